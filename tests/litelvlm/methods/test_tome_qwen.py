"""ToMe's Qwen2.5-VL variant (this project's adaptation: facebookresearch/ToMe @af95e4b has no Qwen code):
ToMe's bipartite soft matching and size-weighted merging applied to the N merged tokens at the LLM input.

Checked: K tokens whose sizes sum to N, each merged feature the size-weighted (here: plain, sizes start at 1)
mean of the tokens it absorbed; the rounds equal a loop of the transcribed official
``bipartite_soft_matching`` (``class_token=False``) and ``merge_wavg``
(tests/litelvlm/methods/test_tome_official.py, ToMe merge.py L18-97, L210-224), and the shared matching
function is the one called; the metric is the last vision block's keys per merged token in the LLM's order; it
runs through ``ground`` (positions official / renumber; keep refused)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from litelvlm import methods
from litelvlm.errors import LiteLVLMError
from litelvlm.llm.context import LLMContext
from litelvlm.methods import tome
from litelvlm.methods import tome_qwen as tome_qwen
from litelvlm.unipixel.pipeline import UniPixelPipeline
from tests.litelvlm.methods.test_tome_official import (
    official_bipartite_soft_matching,
    official_merge_wavg,
)


def _official_loop(x: torch.Tensor, metric: torch.Tensor, budget: int, r: int | None):
    """ToMe's merge.py statements, one matching per round until ``budget`` tokens remain (the variant's
    rounds)."""
    x, metric, size, rounds = x[None], metric[None], None, []
    while x.shape[1] > budget:
        want = x.shape[1] - budget if r is None else min(r, x.shape[1] - budget)
        merge, _ = official_bipartite_soft_matching(metric, want, class_token=False)
        rounds.append(min(want, x.shape[1] // 2))
        metric, _ = official_merge_wavg(merge, metric, size)
        x, size = official_merge_wavg(merge, x, size)
    return x[0], size, rounds


def _members_mean(x: torch.Tensor, assignment: torch.Tensor, k: int) -> torch.Tensor:
    return torch.stack([x[assignment == j].mean(0) for j in range(k)])


@pytest.mark.parametrize("n", [13, pytest.param(24, marks=pytest.mark.slow)])
def test_every_budget_is_the_official_loop_and_a_mean_of_members(n):
    g = torch.Generator().manual_seed(n)
    x, metric = torch.randn(n, 8, generator=g), torch.randn(n, 5, generator=g)
    for budget in range(1, n):
        for r in (None, 3):
            state, rounds = tome_qwen.merge_to(x, metric, budget, r)
            want, size, official_rounds = _official_loop(x, metric, budget, r)
            assert state.x.shape == (1, budget, 8) and rounds == official_rounds
            torch.testing.assert_close(state.x[0], want, rtol=0, atol=1e-6)
            assert torch.equal(state.size, size) and int(state.size.sum()) == n
            assignment = state.group
            assert torch.equal(torch.bincount(assignment, minlength=budget), state.size[0, :, 0].long())
            torch.testing.assert_close(state.x[0], _members_mean(x, assignment, budget), rtol=0, atol=1e-5)
            # each representative is in its row
            assert torch.equal(assignment[state.rep], torch.arange(budget))


def test_matching_without_class_token_is_the_official():
    g = torch.Generator().manual_seed(0)
    for t in (2, 7, 12):
        metric, x = torch.randn(1, t, 6, generator=g), torch.randn(1, t, 4, generator=g)
        for r in range(1, t):
            ours = tome.bipartite_soft_matching(metric, r, class_token=False)
            merge, _ = official_bipartite_soft_matching(metric, r, class_token=False)
            assert ours.r == min(r, t // 2) and torch.equal(ours.merge(x), merge(x))


def test_the_shared_matching_function_is_called(monkeypatch):
    calls = []
    shared = tome.bipartite_soft_matching
    monkeypatch.setattr(tome, "bipartite_soft_matching", lambda *a,
                        **k: (calls.append(k), shared(*a, **k))[1])
    state, rounds = tome_qwen.merge_to(torch.randn(20, 4), torch.randn(20, 3), 3)
    assert rounds == [10, 5, 2] and len(calls) == 3 and all(c == {"class_token": False} for c in calls)
    assert state.x.shape[1] == 3


@pytest.fixture(scope="module")
def pipe(tiny_unipixel_pipe):
    return tiny_unipixel_pipe


@pytest.fixture(scope="module")
def prep(pipe):
    image = Image.fromarray((np.random.default_rng(1).random((97, 131, 3)) * 255).astype("uint8"))
    return pipe.prepare(image, ["the dog on the left"])


def test_the_variant_is_registered_and_offered():
    variant = methods.get_method("tome", "qwen2.5-vl")
    assert variant.backbone == "qwen2.5-vl" and "this project's adaptation" in variant.description
    assert variant.stage.name == "llm-input" and not variant.original_positions and methods.get_method(
        "tome").stage.name == "clip"
    assert UniPixelPipeline.method_error(UniPixelPipeline, "tome") is None


def test_the_metric_is_the_last_blocks_keys_per_merged_token(pipe, prep):
    """Keys of the last block after the vision RoPE, mean over heads, then over each unit's 4 consecutive
    patches (window order), put in the LLM's order by argsort(window_index)."""
    vision = pipe.vision(prep)
    last = len(vision.visual.blocks) - 1
    _, k, _ = vision.block_qk(last, vision.block_inputs([last])[last])
    per_unit = k.mean(0).reshape(-1, 4, k.shape[-1]).mean(1)
    want = per_unit[torch.argsort(vision.window_order())]
    got = tome_qwen.merged_keys(vision)
    assert got.shape == (pipe.num_visual(prep), k.shape[-1])
    torch.testing.assert_close(got, want, rtol=0, atol=1e-6)


def test_runs_through_ground(pipe, prep):
    n = pipe.num_visual(prep)
    full_len = pipe.layout(prep, n).seq_len
    with torch.no_grad():
        official = pipe.ground(prep, "tome", 9)
        renumber = pipe.ground(prep, "tome", 9, positions="renumber")
        whole, none = pipe.ground(prep, "tome", n), pipe.ground(prep, "none")
        metric = tome_qwen.merged_keys(pipe.vision(prep))
    assert (official.position_rule == renumber.position_rule == "renumber" and official.seq_len == full_len
            - n + 9)
    assert torch.equal(official.mask_logits, renumber.mask_logits) and official.mask_logits.isfinite().all()
    sel = official.selection
    state, rounds = tome_qwen.merge_to(pipe.visual_tokens(prep), metric, 9)
    assert torch.equal(sel.features, state.x[0]) and sel.parts["rounds"].tolist() == rounds
    assert int(sel.parts["size"].sum()) == n and len(sel.indices) == 9
    torch.testing.assert_close(sel.features,
                               _members_mean(pipe.visual_tokens(prep), sel.parts["assignment"], 9),
                               rtol=0, atol=1e-5)
    assert torch.equal(whole.mask_logits, none.mask_logits)  # K = N merges nothing
    with pytest.raises(LiteLVLMError, match="no original position"):
        pipe.ground(prep, "tome", 9, positions="keep")
    ctx = LLMContext(pipe, prep, pipe.visual_tokens(prep))
    assert methods.get_method("tome", "qwen2.5-vl").select(ctx, 1).features.shape == (1, pipe.hidden_size)
