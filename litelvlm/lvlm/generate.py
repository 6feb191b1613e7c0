"""Greedy generation after a (pruned) prefill, with the mask head's states of every step that predicts [SEG].

A family whose official protocol generates its answer (UniPixel: ``infer_seg.py`` L190-197, greedy, at most
512 new tokens) offers ``answer="generate"``: the prompt ends where the assistant's answer starts, the LLM
prefills the sequence with the visual tokens a method kept (at the LLM input), then decodes greedily with its
KV cache, each new token at the position after the last one. At every forward, prefill included, where the
last row's argmax is the [SEG] token, the state the mask head reads at that row is kept (UniPixel's
``model/qwen2_5_vl.py`` L348-350, the final norm's input: its ``cache_state_hook``). Methods that prune inside
the LLM do not run this way (their pruned KV cache during decoding has no official definition): ``ground``
refuses them.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..llm.limits import check_llm_input
from .sequence import GroundingOutput, GroundingRun


@dataclass
class Generated:
    """What a greedy generation produced: the new token ids and the mask head's state at each [SEG] step."""

    ids: torch.Tensor          # (T,) generated ids, the stopping token included
    seg_hidden: torch.Tensor   # (R, h) states of the rows predicting each generated [SEG] (R may be 0)
    seg_steps: torch.Tensor    # (R,) the step (0: the prefill) of each


@torch.no_grad()
def greedy_with_seg(language_model, lm_head, embed_tokens, embeds: torch.Tensor, position_ids: torch.Tensor,
                    seg_id: int, stop_ids: set[int], max_new_tokens: int,
                    norm_input: bool = True) -> Generated:
    """Greedy decoding of ``language_model`` (its final norm hooked for the mask head's state) from the
    prefill ``embeds`` (1, S, h) at ``position_ids`` (..., 1, S); stops after a token of ``stop_ids`` or
    ``max_new_tokens`` tokens. ``norm_input``: the state is the final norm's input (else its output)."""
    seen: list[torch.Tensor] = []

    def keep(module, args, output=None) -> None:
        seen[:] = [(args[0] if norm_input else output)[:, -1]]

    norm = language_model.norm
    handle = norm.register_forward_pre_hook(keep) if norm_input else norm.register_forward_hook(keep)
    ids, seg, steps = [], [], []
    try:
        x, pos, past = embeds, position_ids, None
        for step in range(max_new_tokens):
            out = language_model(inputs_embeds=x, position_ids=pos, past_key_values=past, use_cache=True)
            past = out.past_key_values
            token = int(lm_head(out.last_hidden_state[:, -1]).argmax(-1)[0])
            if token == seg_id:
                seg.append(seen[0][0].clone())
                steps.append(step)
            ids.append(token)
            if token in stop_ids:
                break
            x = embed_tokens(torch.tensor([[token]], device=embeds.device))
            pos = pos[..., -1:] + 1
    finally:
        handle.remove()
    h = embeds.shape[-1]
    return Generated(ids=torch.tensor(ids, dtype=torch.long),
                     seg_hidden=torch.stack(seg) if seg else embeds.new_zeros(0, h),
                     seg_steps=torch.tensor(steps, dtype=torch.long))


def generated_output(pipe, run: GroundingRun) -> GroundingOutput:
    """``ground``'s output of ``run`` (its stage's LLM sequence built) under ``answer="generate"``: greedy
    decoding after the prefill; the mask of the first generated [SEG] (UniPixel's ``infer_seg.py`` L235-237
    reads ``model.seg[0]``), or the official failure's all-zero mask when none was generated (L216-220)."""
    layout, pos, embeds = run.layout, run.position_ids, run.embeds
    # the prompt, prefilled
    check_llm_input(pipe.language_model, pipe.name, layout.seq_len, pos, layout.num_visual)
    gen = greedy_with_seg(pipe.language_model, pipe.lm_head, pipe.language_model.embed_tokens, embeds,
                          pos.to(embeds.device), pipe.seg_token_id, pipe.stop_ids, pipe.max_new_tokens,
                          norm_input=pipe.abilities.seg_reads == "norm_input")
    run.seg_hidden, run.seq_len = gen.seg_hidden[:1], layout.seq_len
    run.rows = layout.seq_len - 1 + gen.seg_steps[:1]
    if run.seg_hidden.shape[0]:
        prompts = pipe.seg_prompts(run.seg_hidden)
        low = pipe.decode_masks(run.prepared, prompts)
        logits = pipe.upscale_masks(run.prepared, low)
    else:
        prompts, low = run.seg_hidden.new_zeros(0, 1), torch.zeros(0, 1, 1, 1)
        logits = torch.zeros(1, *pipe.mask_shape(run.prepared))
    return run.output(prompts, low, logits, generated=gen.ids)


__all__ = ["Generated", "generated_output", "greedy_with_seg"]
