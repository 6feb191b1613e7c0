"""The pruned GLaMM pipeline on a tiny random model, checked against reference computations."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from litelvlm.errors import LiteLVLMError
from litelvlm.glamm.prompts import (
    build_prompt,
    expand_image,
    image_offset,
    seg_predictor_positions,
    seg_turns,
    tokenize_prompt,
)
from litelvlm.llm.context import QUERY_KINDS, causal_mask
from litelvlm.llm.pruned_forward import run_pruned_from
from litelvlm.lvlm import LLMContext

SENTENCES = ["the dog on the left", "red car", "the biggest person near the table"]


def _scene(h: int = 150, w: int = 220) -> Image.Image:
    rng = np.random.default_rng(3)
    return Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8))


@pytest.fixture(scope="module")
def pipe(tiny_glamm):
    return tiny_glamm


@pytest.fixture(scope="module")
def prep(pipe):
    return pipe.prepare(_scene(), SENTENCES)


@pytest.fixture(scope="module")
def eager_attn(pipe, prep):
    """Every layer's full attention of an eager copy of the LLM (reference only; the library never does
    this)."""
    lm = copy.deepcopy(pipe.model.language_model)
    lm.set_attn_implementation("eager")
    ctx = pipe.context(prep)
    out = lm(inputs_embeds=ctx.embeds, attention_mask=torch.ones(ctx.embeds.shape[:2], dtype=torch.long),
             output_attentions=True, use_cache=False)
    assert len(out.attentions) == ctx.num_layers
    return [a[0] for a in out.attentions]  # (H, S, S) per layer


def test_unpruned_matches_model_forward(pipe, prep):
    """`none` uses the standard LlamaModel forward; [SEG] hidden states are read one before each [SEG]."""
    out = pipe.ground(prep, "none")
    n = pipe.num_visual_tokens
    seq = expand_image(prep.input_ids, n, -1)
    want = (seq == pipe.seg_token_id).nonzero().flatten() - 1
    assert torch.equal(out.seg_positions.cpu(), want)
    assert out.masks.shape == (len(SENTENCES), 150, 220) and out.seq_len == len(seq)
    ref = pipe.model.language_model(inputs_embeds=pipe.sequence_embeds(prep, pipe.visual_tokens(prep)))
    torch.testing.assert_close(out.seg_hidden, ref.last_hidden_state[0, want], rtol=1e-5, atol=1e-5)


def test_mask_postprocessing_reference(pipe, prep):
    """Low-res logits -> 1024 -> unpad -> original size -> > 0, as in GLaMM."""
    out = pipe.ground(prep, "none")
    h, w = prep.sam_reshaped_size
    assert max(h, w) == 1024 and (h, w) == (round(150 * 1024 / 220), 1024)
    up = F.interpolate(out.low_res_logits.float(), (1024, 1024), mode="bilinear", align_corners=False)
    ref = F.interpolate(up[..., :h, :w], (150, 220), mode="bilinear", align_corners=False)[:, 0]
    torch.testing.assert_close(out.mask_logits, ref)
    assert torch.equal(out.masks, out.mask_logits > 0)
    assert out.prompt_embeddings.shape == (len(SENTENCES), pipe.model.arch.prompt_dim)


@pytest.mark.parametrize("method,options", [("litelvlm", {"raster": True}), ("random", {})])
def test_k_equals_n_in_raster_order_is_unpruned(pipe, prep, method, options):
    """At K = N in raster order a CLIP-side selector changes nothing: bit-identical masks and logits."""
    n = pipe.num_visual_tokens
    base = pipe.ground(prep, "none")
    out = pipe.ground(prep, method, n, **options)
    assert torch.equal(out.kept_indices.cpu(), torch.arange(n))
    assert torch.equal(out.mask_logits, base.mask_logits)
    assert torch.equal(out.seg_hidden, base.seg_hidden)


def test_fastv_at_budget_n_equals_unpruned(pipe, prep):
    n = pipe.num_visual_tokens
    base = pipe.ground(prep, "none")
    for layer in (1, 2, 3):
        out = pipe.ground(prep, "fastv", n, layer=layer)
        assert out.prune_layer == layer and out.seq_len == base.seq_len
        torch.testing.assert_close(out.seg_hidden, base.seg_hidden, rtol=1e-5, atol=1e-6)
        assert torch.equal(out.masks, base.masks)


def test_fastv_keeps_rope_positions_against_masked_reference(pipe, prep):
    """FastV's kept-token run equals the full sequence with dropped tokens masked out as keys from layer K
    on."""
    k_layer, budget = 2, 40
    out = pipe.ground(prep, "fastv", budget, layer=k_layer)
    ctx = pipe.context(prep)
    lm = ctx.lm
    assert len(out.kept_indices) == budget and torch.all(out.kept_indices.diff() > 0)
    # the selection: top-K of the last token's head-averaged attention at layer K-1
    score = ctx.attention_rows(k_layer - 1, "last")[:, :, ctx.visual_slice()].mean(dim=(0, 1))
    assert set(out.kept_indices.tolist()) == set(torch.topk(score, budget).indices.tolist())
    # reference: full sequence, original positions, dropped visual tokens invisible as keys in layers >= K
    s = ctx.seq_len
    dropped = torch.ones(s, dtype=torch.bool)
    dropped[: ctx.image_start] = False
    dropped[ctx.image_start + ctx.num_visual:] = False
    dropped[ctx.image_start + out.kept_indices] = False
    allowed = torch.tril(torch.ones(s, s, dtype=torch.bool)) & ~dropped[None, :]
    allowed |= torch.eye(s, dtype=torch.bool)  # dropped rows attend to themselves (their output is unused)
    mask = torch.zeros(1, 1, s, s).masked_fill(~allowed, torch.finfo(torch.float32).min)
    hidden = ctx.hidden_before(k_layer)
    pe = lm.rotary_emb(hidden, position_ids=ctx.position_ids)
    for layer in lm.layers[k_layer:]:
        hidden = layer(hidden, attention_mask=mask, position_embeddings=pe, position_ids=ctx.position_ids)
        hidden = hidden[0] if isinstance(hidden, tuple) else hidden
    ref = lm.norm(hidden)[0, ctx.seg_predictors]
    torch.testing.assert_close(out.seg_hidden, ref, rtol=1e-4, atol=1e-5)
    # negative control: renumbering the kept tokens 0..S'-1 changes the result
    keep = torch.cat([torch.arange(ctx.image_start), ctx.image_start + out.kept_indices,
                      torch.arange(ctx.image_start + ctx.num_visual, s)])
    from litelvlm.llm.context import run_layers

    contiguous = lm.norm(run_layers(lm, ctx.hidden_before(k_layer)[:, keep],
                                    torch.arange(len(keep))[None], k_layer, ctx.num_layers))
    assert not torch.allclose(contiguous[0, out.seg_positions], out.seg_hidden, atol=1e-4)


def test_fastv_passes_explicit_mask(pipe, prep):
    """With non-contiguous positions the decoder gets a real causal mask (not a packed-sequence one)."""
    ctx = pipe.context(prep)
    keep = torch.tensor([0, 1, 2, 10, 11, 50, 51, 52])
    hidden = ctx.hidden_before(1)[:, keep]
    mask = causal_mask(ctx.lm, hidden, keep[None])
    if isinstance(mask, torch.Tensor):
        m = mask[0, 0]
        allowed = m if m.dtype == torch.bool else m == 0
        assert torch.equal(allowed, torch.tril(torch.ones(8, 8, dtype=torch.bool)))
    else:  # sdpa with a pure causal mask may return None: is_causal is used, which is also correct
        assert mask is None
    final, kept = run_pruned_from(ctx, torch.arange(ctx.num_visual), 1)
    assert torch.equal(kept, torch.arange(ctx.seq_len))


@pytest.mark.parametrize("queries", QUERY_KINDS)
def test_attention_rows_equal_eager_attention(pipe, prep, eager_attn, queries):
    """LLMContext's rows equal the eager model's own attention rows, in every layer, for every query kind."""
    ctx = pipe.context(prep)
    rows = ctx.query_rows(queries)
    for layer, full in enumerate(eager_attn):
        got = ctx.attention_rows(layer, queries)
        assert got.shape == (full.shape[0], len(rows), ctx.seq_len)
        torch.testing.assert_close(got, full[:, rows].float(), rtol=1e-4, atol=1e-6)
    via_pipe = pipe.attention_rows(prep, layers=[0, 3], queries=queries)
    torch.testing.assert_close(via_pipe[3], eager_attn[3][:, rows], rtol=1e-4, atol=1e-6)


def test_query_rows(pipe, prep):
    ctx = pipe.context(prep)
    n, s0 = ctx.num_visual, ctx.image_start
    assert ctx.query_rows("last").tolist() == [ctx.seq_len - 1]
    assert ctx.query_rows("text").tolist() == list(range(s0 + n, ctx.seq_len))
    assert torch.equal(ctx.query_rows("seg"), seg_predictor_positions(prep.input_ids, n, pipe.seg_token_id))
    with pytest.raises(LiteLVLMError, match="query kind"):
        ctx.query_rows("cls")
    with pytest.raises(LiteLVLMError, match="attention layer"):
        ctx.attention_rows(ctx.num_layers)


@pytest.mark.parametrize("queries", QUERY_KINDS)
def test_llm_attention_oracle(pipe, prep, eager_attn, queries):
    """The oracle keeps the top-K visual tokens by the eager attention they receive, in raster order."""
    budget, layer = 48, 2
    ctx = pipe.context(prep)
    out = pipe.ground(prep, "llm-attention", budget, layer=layer, queries=queries)
    vs = ctx.visual_slice()
    score = eager_attn[layer][:, ctx.query_rows(queries)][:, :, vs].mean(dim=(0, 1))
    want = torch.sort(torch.topk(score, budget).indices).values
    assert torch.equal(out.kept_indices.cpu(), want)
    assert out.prune_layer == 0 and out.seq_len == ctx.seq_len - ctx.num_visual + budget
    # pruned at the LLM input: same as feeding exactly those projector outputs
    embeds = pipe.sequence_embeds(prep, pipe.visual_tokens(prep)[want])
    ref = pipe.model.language_model(inputs_embeds=embeds).last_hidden_state[0, out.seg_positions]
    torch.testing.assert_close(out.seg_hidden, ref, rtol=1e-5, atol=1e-5)


def test_seg_positions_recomputed_after_pruning(pipe, prep):
    """For every budget the [SEG]-predicting positions match a brute-force expansion with K visual tokens."""
    for method, budget in [("litelvlm", 64), ("random", 7), ("visionzip", 32), ("fastv", 20)]:
        out = pipe.ground(prep, method, budget)
        if out.prune_layer:
            continue  # FastV keeps all tokens up to layer K; positions checked in the FastV tests
        seq = expand_image(prep.input_ids, budget, -1)
        assert out.seq_len == len(seq)
        assert torch.equal(out.seg_positions.cpu(), (seq == pipe.seg_token_id).nonzero().flatten() - 1)


@pytest.mark.parametrize("num_visual", [1, 7, 64, 576])
def test_seg_arithmetic_several_seg(pipe, num_visual):
    """[SEG] arithmetic for prompts with several [SEG] (GLaMM templates, multi-[SEG] answers)."""
    turns = seg_turns(SENTENCES) + [("Segment both the cup and the bowl.", "Sure, [SEG] and [SEG].")]
    ids = tokenize_prompt(pipe.tokenizer, build_prompt(turns))
    seg = pipe.seg_token_id
    assert int((ids == seg).sum()) == 5
    seq = expand_image(ids, num_visual, -1)
    brute = torch.tensor([i - 1 for i, t in enumerate(seq.tolist()) if t == seg])
    assert torch.equal(seg_predictor_positions(ids, num_visual, seg), brute)
    assert all(seq[int(p) + 1] == seg for p in brute)
    assert int((seq == -1).sum()) == num_visual and image_offset(ids) == int((seq == -1).nonzero()[0])


def test_seg_arithmetic_errors(pipe):
    seg = pipe.seg_token_id
    ids = tokenize_prompt(pipe.tokenizer, build_prompt([("what is it?", "a dog.")]))
    with pytest.raises(LiteLVLMError, match="no \\[SEG\\]"):
        seg_predictor_positions(ids, 10, seg)
    bad = torch.tensor([1, seg, -200, 5])
    with pytest.raises(LiteLVLMError, match="precedes the image"):
        seg_predictor_positions(bad, 10, seg)
    with pytest.raises(LiteLVLMError, match="sentences"):
        pipe.with_sentences(pipe.prepare_image(_scene(40, 40)), ["a", "b"], turns=[("q", "It is [SEG].")])


def test_budget_errors(pipe, prep):
    with pytest.raises(LiteLVLMError):
        pipe.ground(prep, "litelvlm", pipe.num_visual_tokens + 1)
    with pytest.raises(LiteLVLMError, match="none"):
        pipe.ground(prep, "none", 10)
    with pytest.raises(LiteLVLMError, match="FastV layer"):
        pipe.ground(prep, "fastv", 10, layer=0)


def test_llm_context_matches_layerwise_forward(pipe, prep):
    """hidden_before(l) equals the model's own hidden_states[l] (layer by layer)."""
    ctx = LLMContext(pipe, prep, pipe.visual_tokens(prep))
    ref = pipe.model.language_model(inputs_embeds=ctx.embeds, output_hidden_states=True)
    for layer in range(ctx.num_layers):
        torch.testing.assert_close(ctx.hidden_before(layer), ref.hidden_states[layer], rtol=1e-5, atol=1e-5)
