"""Qwen3-VL's DeepStack as hooks on the first LLM layers (:mod:`litelvlm.sa2va.deepstack`), on the tiny
Sa2VA-Qwen3-VL: the rows are found bit for bit; on the unpruned sequence the additions are transformers' own
(``Qwen3VLTextModel`` given ``deepstack_visual_embeds``, whose hooks then stand aside); a sequence cut inside
the DeepStack layers (FastV at its layer 2, before the third addition) gets each kept token's features from
there on, as a loop over transformers' layers and ``_deepstack_process`` gives them (this project's
adaptation); a pooled token gets none; a padded batch of prompts gets each prompt's own. The ``[SEG]`` state
compared is the one the mask head reads by default, the final norm's input (``seg_state="unnormed"``,
:mod:`litelvlm.sa2va.qwen3_pipeline`)."""

from __future__ import annotations

import pytest
import torch

from tests.fixtures.images import noise_image


@pytest.fixture(scope="module")
def tiny(qwen3_tiny):
    pipe = qwen3_tiny.pipe
    return qwen3_tiny.parts, pipe, pipe.prepare(noise_image(91, 137, seed=5), ["the dog on the left"])


def test_rows_are_matched_bit_for_bit():
    from litelvlm.sa2va.deepstack import fingerprints, match_rows

    ref = torch.randn(7, 33, generator=torch.Generator().manual_seed(0)).to(torch.bfloat16)
    query = torch.cat([ref[[4, 0, 4]], torch.randn(2, 33).to(torch.bfloat16)])
    query[-1] = ref[2]
    query.view(torch.int16)[-1, 5] += 1                                        # one bit off
    assert match_rows(query, ref).tolist() == [4, 0, 4, -1, -1]
    assert torch.equal(fingerprints(ref[[1, 2]]), fingerprints(ref)[[1, 2]])   # a function of the row alone
    assert match_rows(query.float(), ref).tolist() == [-1] * 5                 # another dtype: no row


def test_the_unpruned_sequence_gets_transformers_deepstack(tiny):
    parts, pipe, prep = tiny
    n = pipe.num_visual(prep)
    layout = pipe.layout(prep, n)
    embeds = pipe.sequence_embeds(prep, prep.visual)
    ones = torch.ones(1, layout.seq_len, dtype=torch.long)
    with torch.no_grad():
        hooked = pipe.final_hidden(embeds, layout.position_ids)
        rows = (prep.mm_token_type_ids > 0)[None]
        official = pipe.language_model(inputs_embeds=embeds, position_ids=layout.position_ids,
                                       attention_mask=ones, visual_pos_masks=rows,
                                       deepstack_visual_embeds=list(prep.deepstack)).last_hidden_state
        plain = parts.qwen.model.language_model(inputs_embeds=embeds, position_ids=layout.position_ids,
                                                attention_mask=ones).last_hidden_state
    assert torch.equal(hooked, official) and not torch.allclose(hooked, plain)


def norm_input(lm, **inputs) -> torch.Tensor:
    """The input of ``lm``'s final norm (the last decoder layer's output) in ``lm(**inputs)``."""
    seen = []
    handle = lm.norm.register_forward_pre_hook(lambda module, args: seen.append(args[0]))
    try:
        lm(**inputs)
    finally:
        handle.remove()
    return seen[-1]


def reference_cut(lm, prep, pipe, kept: torch.Tensor, at: int) -> torch.Tensor:
    """The last decoder layer's states (the final norm's input) of transformers' layers run one by one, the
    visual tokens outside ``kept`` dropped before layer ``at``, ``_deepstack_process`` after each of the first
    D layers on the visual rows present (their own features), kept tokens at their M-RoPE ids."""
    from litelvlm.llm.context import causal_mask

    n = pipe.num_visual(prep)
    layout = pipe.layout(prep, n)
    s, seq = layout.image_start, layout.seq_len
    hidden, pos = pipe.sequence_embeds(prep, prep.visual), layout.position_ids
    tokens = torch.arange(n)
    keep = torch.cat([torch.arange(s), s + kept, torch.arange(s + n, seq)])
    for i, layer in enumerate(lm.layers):
        if i == at:
            hidden, pos, tokens = hidden[:, keep], pos[..., keep], kept
        rows = torch.zeros(hidden.shape[:2], dtype=torch.bool)
        rows[0, s:s + len(tokens)] = True
        hidden = layer(hidden, attention_mask=causal_mask(lm, hidden, pos),
                       position_embeddings=lm.rotary_emb(hidden, position_ids=pos), position_ids=pos)
        if i < len(prep.deepstack):
            hidden = lm._deepstack_process(hidden, rows, prep.deepstack[i][tokens])
    return hidden


def test_a_cut_inside_the_deepstack_layers_keeps_each_tokens_features(tiny):
    parts, pipe, prep = tiny
    out = pipe.ground(prep, "fastv", 5)
    assert out.prune_layer == 2 < len(prep.deepstack) == 3
    with torch.no_grad():
        ref = reference_cut(parts.qwen.model.language_model, prep, pipe, out.kept_indices.cpu(), 2)
    assert torch.equal(out.seg_hidden, ref[0, out.seg_positions])


def test_a_pooled_token_gets_no_features(tiny):
    """``downsample`` pools the grid: its tokens copy no visual token, so no row of its sequence gets a
    DeepStack addition (transformers' forward told of no visual row)."""
    _, pipe, prep = tiny
    out = pipe.ground(prep, "downsample", 4, positions="renumber")
    layout = pipe.layout(prep, 4)
    embeds = pipe.sequence_embeds(prep, out.selection.features)
    ones = torch.ones(1, layout.seq_len, dtype=torch.long)
    with torch.no_grad():
        # deepstack_visual_embeds given: the hooks stand aside
        none = norm_input(pipe.language_model, inputs_embeds=embeds, position_ids=layout.position_ids,
                          attention_mask=ones, deepstack_visual_embeds=[])
    assert torch.equal(out.seg_hidden, none[0, layout.seg_predictors])


def test_a_padded_batch_gets_each_prompts_own_features(tiny):
    _, pipe, prep = tiny
    other = pipe.prepare(noise_image(40, 230, seed=6), ["a bird"])
    one = [pipe.ground(p, "divprune", 6).seg_hidden for p in (prep, other)]
    many = [o.seg_hidden for o in pipe.ground_many([prep, other], "divprune", 6)]
    assert all(torch.allclose(a, b, atol=1e-5, rtol=1e-5) for a, b in zip(one, many, strict=True))
