"""VideoGLaMM's eager attention in reused scratch memory (``litelvlm.videoglamm.scratch_attention``): the
LLM's final hidden states equal transformers' eager attention's bit for bit (past the sliding window too), the
buffers are the same memory from one prefill to the next (grown only for a longer prompt), and the model's
attention is restored after."""

from __future__ import annotations

from dataclasses import replace

import torch

from litelvlm.videoglamm.config import PRESETS
from litelvlm.videoglamm.hf_config import phi3_config
from litelvlm.videoglamm.scratch_attention import Scratch, scratch_eager


def _llm():
    """The tiny preset's LLM with a 64-key sliding window (the real 2048 one at a fraction of the cost)."""
    from transformers import Phi3ForCausalLM

    torch.manual_seed(0)
    return Phi3ForCausalLM(phi3_config(replace(PRESETS["tiny"], sliding_window=63))).model.eval()


@torch.no_grad()
def test_the_same_hidden_states_in_the_same_memory():
    llm = _llm()
    scratch = Scratch()
    ptrs = []
    for length in (150, 70, 150, 151):   # past the 64-key window; shorter, the same, longer
        embeds = torch.randn(1, length, llm.config.hidden_size,
                             generator=torch.Generator().manual_seed(length))
        want = llm(inputs_embeds=embeds, use_cache=False).last_hidden_state
        with scratch_eager(llm, scratch):
            got = llm(inputs_embeds=embeds, use_cache=False).last_hidden_state
        assert torch.equal(got, want), length
        assert llm.config._attn_implementation == "eager"   # restored
        assert not any(hasattr(m, "_litelvlm_scratch") for m in llm.modules())
        ptrs.append((scratch.flat[0].data_ptr(), scratch.flat[1].data_ptr(), scratch.flat_mask.data_ptr()))
    assert ptrs[0] == ptrs[1] == ptrs[2]   # the first prompt's memory (scores and mask), reused
    # grown once, a quarter more, for the longer prompt
    assert scratch.flat[0].numel() == 4 * 150 * 150 * 5 // 4
    assert scratch.flat_mask.numel() == 150 * 150 * 5 // 4


@torch.no_grad()
def test_attention_weights_asked_for_come_from_transformers_own_function():
    llm = _llm()
    embeds = torch.randn(1, 40, llm.config.hidden_size)
    want = llm(inputs_embeds=embeds, use_cache=False, output_attentions=True)
    scratch = Scratch()
    with scratch_eager(llm, scratch):
        got = llm(inputs_embeds=embeds, use_cache=False, output_attentions=True)
    assert scratch.flat == [] and len(got.attentions) == len(want.attentions)
    assert all(torch.equal(a, b) for a, b in zip(got.attentions, want.attentions, strict=True))
    assert torch.equal(got.last_hidden_state, want.last_hidden_state)
