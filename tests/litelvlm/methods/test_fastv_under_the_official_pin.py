"""FastV in the tiny GLaMM against FastV's own loop run under FastV's pin, transformers 4.31.0
(pkunlp-icler/FastV @ d165972 ``src/LLaVA/pyproject.toml``; its ``src/transformers`` copy, where FastV's
in-place pruning lives, is 4.31.0), in a second environment (``tests/pinned_env.py``,
``tests/pinned_scripts/fastv_official.py``).

What the rule reads depends on the version: the attentions the decoder layer returns with
``output_attentions=True`` (4.31's eager ``LlamaAttention``: logits divided by ``sqrt(head_dim)``, additive
mask, float32 softmax cast to the model dtype, no clamp to the dtype's minimum as 4.28 had), the rotary
tables, the masks it builds, and the decoder layers run on the kept tokens at their original positions. On
the same tensors and inputs, in float32 and bfloat16 (the official precision), the ranked rows are equal bit
for bit, so are the kept tokens at every budget 1..N at K = 1, 2, 3, and the loops' kept indices and states.
"""

from __future__ import annotations

import functools

import pytest
import torch

from litelvlm.methods.fastv import fastv_select
from tests.litelvlm.methods.official_pin import FASTV_KS, FASTV_LOOPS


def test_the_official_side_ran_under_fastvs_pin(pinned_431):
    versions = pinned_431.versions
    assert versions["transformers"] == "4.31.0" and "pinned" in versions["transformers_path"]
    for pipe, _, _, _ in pinned_431.fastv:
        assert pipe.model.language_model.config.rope_parameters["rope_theta"] == 10000   # 4.31's only base


def test_the_ranked_rows_are_4_31s(pinned_431):
    """The row FastV ranks by (layer K-1, last token, head mean, image columns), as the project computes it
    with the official numerics, equals 4.31's bit for bit."""
    for pipe, _, ctx, got in pinned_431.fastv:
        for k in FASTV_KS:
            with torch.no_grad():
                ours = fastv_select(ctx, 1, layer=k).scores
            assert got["rows"][k].dtype == pipe.dtype
            # float32: the project's one row against 4.31's full matrix can differ in the last bit
            tol = 1e-6 if pipe.dtype == torch.float32 else 0.0
            torch.testing.assert_close(ours, got["rows"][k].float(), rtol=tol, atol=0)


#: the edges and the paper's budgets (of N = 576)
BUDGETS = (1, 2, 3, 64, 128, 144, 192, 288, 574, 575, 576)


@pytest.mark.parametrize("budgets", [BUDGETS, pytest.param(None, marks=pytest.mark.slow)],
                         ids=["edges", "all"])
@pytest.mark.parametrize("fastv_k", FASTV_KS)
def test_every_budget_keeps_4_31s_tokens(pinned_431, fastv_k, budgets, monkeypatch):
    """K = 1..N (the default suite: the edges and the paper's budgets): the kept image tokens are those of
    4.31's ``topk(ATTENTION_RANK)``."""
    for _, _, ctx, got in pinned_431.fastv:
        monkeypatch.setattr(ctx, "visual_attention", functools.cache(ctx.visual_attention))
        for budget, official_kept in got["kept"][fastv_k].items():
            if budgets is not None and budget not in budgets:
                continue
            with torch.no_grad():
                sel = fastv_select(ctx, budget, layer=fastv_k)
            assert sel.indices.tolist() == official_kept.tolist(), (ctx.embeds.dtype, fastv_k, budget)


@pytest.mark.parametrize("loop", FASTV_LOOPS, ids=[f"K{k}-R{r}" for k, r in FASTV_LOOPS])
def test_the_pruned_run_is_4_31s(pinned_431, loop):
    """The whole in-place loop: the kept indices, the pruned length and the ``[SEG]`` states."""
    fastv_k, budget = loop
    for pipe, prep, ctx, got in pinned_431.fastv:
        keep, final = got["loops"][loop]
        ours = pipe.ground(prep, "fastv", budget, layer=fastv_k)
        kept_visual = keep[(keep >= ctx.image_start) & (keep < ctx.image_start + ctx.num_visual)]
        assert ours.kept_indices.tolist() == (kept_visual - ctx.image_start).tolist()
        assert ours.seq_len == final.shape[1]
        tol = 1e-5 if pipe.dtype == torch.float32 else 2e-2
        torch.testing.assert_close(ours.seg_hidden, final[0, ours.seg_positions], rtol=tol, atol=tol)
