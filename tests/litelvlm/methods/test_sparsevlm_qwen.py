"""SparseVLM's Qwen2.5-VL variant (this project's adaptation: Gumpest/SparseVLMs @26a5f48 has no Qwen code) on
the tiny random UniPixel: the official statements of ``litelvlm.methods.sparsevlm`` with a multi-axis position
rule.

Checked: with axis-independent positions its selections and hidden states equal the GLaMM code path's (the
same hidden states, 1-D positions); the positions it gives are the documented ones (the original 3-D M-RoPE
ids up to the first pruning layer, then 0..S'-1 on every axis, recycled tokens included: the family's
renumbered layout); the stage plan of a shallow LLM; and it runs through ``ground`` with positions official /
renumber."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from litelvlm import methods
from litelvlm.errors import LiteLVLMError
from litelvlm.llm.context import LLMContext
from litelvlm.methods import sparsevlm as sv
from litelvlm.methods.sparsevlm_qwen import every_axis_renumbered, qwen_stages, shallow_stages
from litelvlm.unipixel.pipeline import UniPixelPipeline


def _image(h: int, w: int, seed: int = 0) -> Image.Image:
    return Image.fromarray((np.random.default_rng(seed).random((h, w, 3)) * 255).astype("uint8"))


@pytest.fixture(scope="module")
def pipe(tiny_unipixel_pipe):
    return tiny_unipixel_pipe


@pytest.fixture(scope="module", params=[(97, 131), pytest.param((71, 59), marks=pytest.mark.slow)])
def prep(request, pipe):
    return pipe.prepare(_image(*request.param), ["the dog on the left"])


def test_the_variant_is_registered_and_offered():
    variant = methods.get_method("sparsevlm", "qwen2.5-vl")
    own = methods.get_method("sparsevlm")
    assert variant.backbone == "qwen2.5-vl" and "this project's adaptation" in variant.description
    assert not variant.one_axis_positions and own.one_axis_positions  # the GLaMM method keeps its 1-D rule
    assert not variant.original_positions and variant.stage.name == own.stage.name == "llm-stages"
    assert UniPixelPipeline.method_error(UniPixelPipeline, "sparsevlm") is None


def test_shallow_stages():
    for budget in (192, 128, 96, 64):
        assert shallow_stages(budget, 32) == (sv.PRUNING_LOC, sv.SPARSE_TOKEN_DICT[budget])
    assert shallow_stages(192, 28) == ((2, 5, 13), (300, 200, 110))  # Qwen2.5-VL-7B's 28 layers
    # = GLaMM's mapping where it exists
    assert shallow_stages(192, 4) == (sv.stage_layers(4), (300, 200, 110))
    assert shallow_stages(192, 2) == ((0, 1), (200, 110))  # (0, 0, 1): the first two stages collapse
    assert shallow_stages(192, 1) == ((0,), (110,))
    # 64: (66, 30, 17) on layers (0, 0, 1) -> (0, 1) keeping 30 then 17; layer 1 sees 30 kept + 4 recycled
    assert shallow_stages(64, 2) == ((0, 1), (30, 17)) and qwen_stages(64, 140, 2) == ((0, 140), (1, 34))


def _axis_free(ctx: LLMContext, axes: int) -> LLMContext:
    """``ctx`` with the positions 0..S-1 on ``axes`` axes (M-RoPE with equal ids on every axis is 1-D
    RoPE)."""
    pos = torch.arange(ctx.seq_len)
    ctx.position_ids = pos[None] if axes == 1 else pos.view(1, 1, -1).expand(axes, 1, -1)
    return ctx


@pytest.mark.parametrize("budget",
                         [1, 17, pytest.param(5, marks=pytest.mark.slow),
                          pytest.param(64, marks=pytest.mark.slow)])
def test_axis_independent_positions_give_the_glamm_path(pipe, prep, budget):
    """The same hidden states and axis-independent positions: the GLaMM method (1-D) and the variant (3 axes)
    keep the same tokens at every stage, with the same scores, raters and final hidden states."""
    full = pipe.visual_tokens(prep)
    layers, counts = shallow_stages(budget, len(pipe.language_model.layers))
    one = _axis_free(LLMContext(pipe, prep, full), 1)
    three = _axis_free(LLMContext(pipe, prep, full), 3)
    with torch.no_grad():
        a = methods.get_method("sparsevlm").select(one, budget, layers=layers, counts=counts)
        b = methods.get_method("sparsevlm", "qwen2.5-vl").select(three, budget, layers=layers, counts=counts)
    assert a.parts.keys() == b.parts.keys()
    for key in a.parts:
        assert torch.equal(a.parts[key], b.parts[key]), key
    assert torch.equal(a.indices, b.indices) and torch.equal(a.scores, b.scores)
    assert torch.equal(a.llm_output[1], b.llm_output[1])
    torch.testing.assert_close(a.llm_output[0], b.llm_output[0], rtol=0, atol=1e-6)


def test_positions_are_the_documented_ones(pipe, prep, monkeypatch):
    """Stage 0 rates with the unpruned sequence's 3-D M-RoPE ids; every later layer runs on 0..S'-1 on all
    three axes (the recycled tokens at the rows right after the kept ones), which is the family's renumbered
    layout."""
    seen_rows, seen_layers = [], []
    rows_at, run_layers = sv.attention_rows_at, sv.run_layers
    monkeypatch.setattr(sv, "attention_rows_at", lambda lm, layer, h, pos,
                        *a: (seen_rows.append(pos), rows_at(lm, layer, h, pos, *a))[1])
    monkeypatch.setattr(sv, "run_layers", lambda lm, h, pos,
                        *a: (seen_layers.append((h.shape[1], pos)), run_layers(lm, h, pos, *a))[1])
    ctx = LLMContext(pipe, prep, pipe.visual_tokens(prep))
    n, s = ctx.num_visual, ctx.image_start
    with torch.no_grad():
        sel = methods.get_method("sparsevlm", "qwen2.5-vl").select(ctx, 17)
    original = pipe.layout(prep, n).position_ids
    assert torch.equal(seen_rows[0], original) and not torch.equal(original[0], original[1])  # real 3-D ids
    visual = sel.parts["stage_visual"].tolist()
    assert len(seen_rows) == len(visual)  # one rating per stage
    # the pruned sequences
    assert {length for length, _ in seen_layers} == {ctx.seq_len - n + v for v in visual}
    for length, pos in seen_layers:
        v_num = length - (ctx.seq_len - n)
        assert pos.shape == (3, 1, length)
        assert torch.equal(pos, torch.arange(length).view(1, 1, -1).expand(3, 1, -1).to(pos.device))
        # the family's renumbered layout (v_num < N)
        assert torch.equal(pos, pipe.layout(prep, v_num).position_ids)
        recycled = torch.arange(s + v_num - 1, s + v_num)  # the last visual row: a recycled cluster mean
        assert torch.equal(pos[:, 0, recycled.to(pos.device)].cpu(), recycled.expand(3, -1))
    for pos in seen_rows[1:]:
        assert torch.equal(pos, every_axis_renumbered(ctx, pos.shape[-1]))


def test_runs_through_ground(pipe, prep):
    n = pipe.num_visual(prep)
    full_len = pipe.layout(prep, n).seq_len
    with torch.no_grad():
        official = pipe.ground(prep, "sparsevlm", 17)
        renumber = pipe.ground(prep, "sparsevlm", 17, positions="renumber")
        direct = methods.get_method("sparsevlm", "qwen2.5-vl").select(
            LLMContext(pipe, prep, pipe.visual_tokens(prep)), 17)
        whole = pipe.ground(prep, "sparsevlm", n)
        none = pipe.ground(prep, "none")
    assert official.position_rule == renumber.position_rule == "renumber"
    assert torch.equal(official.mask_logits, renumber.mask_logits) and official.mask_logits.isfinite().all()
    assert torch.equal(official.kept_indices, direct.indices)
    last = int(direct.parts["stage_visual"][-1])
    assert official.seq_len == full_len - n + last and official.prune_layer == int(
        direct.parts["stage_layers"][0]) + 1
    assert torch.equal(whole.mask_logits, none.mask_logits)  # K = N: no pruning
    with pytest.raises(LiteLVLMError, match="no original position"):
        pipe.ground(prep, "sparsevlm", 17, positions="keep")
