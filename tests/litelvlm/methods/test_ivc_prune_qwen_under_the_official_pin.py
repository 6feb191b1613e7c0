"""IVC-Prune's Qwen2.5-VL rule against its official prefill run under the release IVC-Prune's bundled
transformers modifies, in a second environment (``tests/pinned_env.py``: transformers 4.51.3,
FireRedTeam/IVC-Prune @03afd9c ``transformers/src/transformers/__init__.py`` L21).

The official side (``tests/pinned_scripts/ivc_prune_qwen_official.py``) loads the written random folder into
4.51.3's own ``Qwen2_5_VLForConditionalGeneration`` (eager attention; the bundled file's rotary, layers and
``get_rope_index`` are the release's) and runs there ``get_rope_index``, the per-axis RoPE tables, the value
states of layer ``K-1``, the transcribed selection and the decoder loop with the cut before layer ``K``, on
our LLM input (the same ids and embeddings; the value projections scaled by 8 on both sides, as
``test_ivc_prune_qwen_official.py`` does, so that the value similarities spread). Here: the M-RoPE ids, the
tables, the value states and scores equal ours bit for bit, the kept tokens equal ours, and the final states
at the ``[SEG]``-predicting rows are within float rounding, at the official count, the edges and the paper's
ratios (every budget and other odd sizes: ``slow``). The official side is launched with the LLaVA-1.5 rule's
by ``ivc_prune_official_pin.py``."""

from __future__ import annotations

import pytest
import torch

from litelvlm.methods import ivc_prune_qwen as ivq
from tests.fixtures.kept import visual_part
from tests.litelvlm.methods.ivc_prune_official_pin import DTYPES, official_side, qwen_pipe, qwen_targets


def _check(dtype: str, every: bool) -> None:
    pipe = qwen_pipe(dtype)
    for prep, off in official_side(every)["qwen"][dtype]["cases"]:
        ctx = pipe.context(prep)
        assert torch.equal(ctx.position_ids.cpu(), off["position_ids"])  # get_rope_index
        first = off["runs"][0]
        tables = ivq.axis_tables(ctx)
        assert torch.equal(tables[0], first["tables"][0]) and torch.equal(tables[1], first["tables"][1])
        with torch.no_grad():
            assert torch.equal(ivq.value_states(ctx, 0), first["values"])
            scores = ivq.ivc_scores(ctx, 1)
        assert torch.equal(scores["score"], first["lists"][1])
        assert torch.equal(scores["seeds"] + ctx.image_start, first["lists"][0])
        for run, target in zip(off["runs"], qwen_targets(ctx.num_visual, every), strict=True):
            budget = ivq.official_budget(ctx) if target is None else target
            with torch.no_grad():
                sel = ivq.ivc_prune_qwen_select(ctx, budget)
                if not every or target is None or target % 9 == 0:  # the pruned forward at some budgets
                    ours, pred = ivq.IVC_PRUNE_QWEN.forward(ctx, sel)
                    tol = 1e-5 if dtype == "float32" else 2e-2
                    torch.testing.assert_close(ours[0, pred], run["final"][0, pred], rtol=tol, atol=tol)
            assert sel.indices.tolist() == visual_part(run["keep"], ctx), (prep.image.size, budget)


def test_the_official_side_ran_under_the_pin_with_every_tensor_of_the_llm():
    for got in official_side(False)["qwen"].values():
        versions = got["versions"]
        assert versions["transformers"] == "4.51.3" and "pinned" in versions["transformers_path"]
        assert got["missing_keys"] == []


@pytest.mark.parametrize("dtype", DTYPES)
def test_rope_tables_values_kept_tokens_and_states_are_the_official_ones(dtype):
    _check(dtype, every=False)


@pytest.mark.slow
@pytest.mark.parametrize("dtype", DTYPES)
def test_every_budget_on_odd_sizes_under_the_pin(dtype):
    _check(dtype, every=True)
