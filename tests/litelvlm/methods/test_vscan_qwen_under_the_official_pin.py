"""VScan's Qwen2.5-VL variant against its official prefill run under VScan's pin, in a second environment
(``tests/pinned_env.py``: transformers 4.51.3, Tencent/SelfEvolvingAgent @a82450e ``VScan/README.md`` L37).

The official side (``tests/pinned_scripts/vscan_qwen_official.py``) loads the written random folder into
4.51.3's own ``Qwen2_5_VLForConditionalGeneration`` (SDPA), onto whose classes the official code binds its
forwards, and runs there: ``get_rope_index``, the tower (each block's input taken at the block), the
transcribed local and global weights, the selection and merge, and the decoder loop with the middle layer's
pruning on 4.51.3's own layers, RoPE and norm. Here, on the same pixels and ids: the M-RoPE ids equal ours,
the scores, the picks (in their order), the merged features, the tokens the middle layer keeps and the final
states equal ours or are within float rounding, at the edges and the paper's ratios (budgets across the range,
odd sizes: ``slow``)."""

from __future__ import annotations

import functools
import json
import tempfile
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from litelvlm.llm.context import LLMContext
from litelvlm.methods import vscan_qwen as vq
from tests.fixtures.images import noise_image
from tests.litelvlm.methods.test_vscan_qwen_official import _load
from tests.pinned_env import run_pinned

DTYPES = ("float32", "bfloat16")


def _budgets(n: int, every: bool) -> list[int]:
    """The edges and the paper's ratios (64, 128, 192 of 576), or budgets across the range."""
    extra = range(4, n, 9) if every else (round(n * k / 576) for k in (64, 128, 192))
    return sorted({1, *extra, n - 1, n} | ({2, 3} if every else set()))


def _sizes(every: bool) -> list[tuple[int, int]]:
    return [(97, 131), (45, 301), (131, 97)] if every else [(97, 131)]


def _runs(pipe, prep, every: bool) -> list[tuple[int, list]]:
    """[(budget, [visual_token_ratio, layer, ratio])] as ``test_vscan_qwen_official.py`` calls the official
    code (V tokens through an image_token_ratio with int(ratio * N) = V)."""
    n, num_layers = pipe.num_visual(prep), len(pipe.language_model.layers)
    layer, runs = vq.default_layer(num_layers), []
    for budget in _budgets(n, every):
        if budget == n:
            continue
        visual, _ = vq.stage_counts(budget, n, num_layers)
        runs.append((budget, [1 if visual == n else (visual + 0.5) / n, layer, vq.STAGE_RATIO]))
    return runs


@functools.cache
def official_side(every: bool) -> dict:
    """dtype -> [(prepared input, budgets, the official results)], both dtypes in one launch of the pinned
    interpreter (``tests/pinned_scripts/batch.py``)."""
    from litelvlm.unipixel.checkpoint import random_unipixel_dir

    folder, got = str(random_unipixel_dir("tiny", 0)), {}
    with tempfile.TemporaryDirectory(prefix="vscan-pin-") as tmp:
        jobs, preps = [], {}
        for dtype in DTYPES:
            pipe, cases = _load(dtype), []
            preps[dtype] = [pipe.prepare(noise_image(*s, seed=sum(s)), ["the cup"]) for s in _sizes(every)]
            for prep in preps[dtype]:
                video = pipe._video(prep.image)
                runs = _runs(pipe, prep, every)
                cases.append({"pixel_values": video["pixel_values_videos"],
                              "grid_thw": video["video_grid_thw"],
                              "input_ids": prep.input_ids, "second_per_grid_ts": prep.second_per_grid_ts,
                              "video_token_id": int(prep.input_ids[(prep.mm_token_type_ids > 0)][0]),
                              "runs": [r for _, r in runs],
                              # bfloat16: the prefill on our tower's output too (see _check)
                              "features": pipe.visual_tokens(prep) if dtype == "bfloat16" else None})
            torch.save({"dtype": dtype, "cases": cases}, Path(tmp) / f"{dtype}.pt")
            jobs.append(["vscan_qwen_official.py", folder, str(Path(tmp) / f"{dtype}.pt"),
                         str(Path(tmp) / f"{dtype}-out.pt")])
        (Path(tmp) / "jobs.json").write_text(json.dumps(jobs))
        run_pinned("vscan-qwen", "batch.py", str(Path(tmp) / "jobs.json"))
        for dtype in DTYPES:
            out = torch.load(Path(tmp) / f"{dtype}-out.pt", weights_only=False)
            budgets = [[b for b, _ in _runs(_load(dtype), prep, every)] for prep in preps[dtype]]
            got[dtype] = {"versions": out["versions"], "missing_keys": out["missing_keys"],
                          "cases": list(zip(preps[dtype], budgets, out["cases"], strict=True))}
    return got


def _nearest(features: torch.Tensor, kept: torch.Tensor) -> torch.Tensor:
    """The kept token each dropped one merges into (``token_merging``'s cosine argmax, L106-107)."""
    dropped = torch.ones(len(features), dtype=torch.bool)
    dropped[kept] = False
    similarity = F.cosine_similarity(features[dropped].unsqueeze(1), features[kept].unsqueeze(0), dim=2)
    return similarity.argmax(dim=1)


def _check(dtype: str, every: bool) -> None:
    pipe = _load(dtype)
    exact = dtype != "float32"
    for prep, budgets, off in official_side(every)[dtype]["cases"]:
        n, num_layers = pipe.num_visual(prep), len(pipe.language_model.layers)
        assert torch.equal(pipe.layout(prep, n).position_ids.cpu(), off["position_ids"])  # get_rope_index
        local, global_, _ = vq.vision_scores(LLMContext(pipe, prep, pipe.visual_tokens(prep)))
        tol = dict(rtol=0, atol=0 if exact else 1e-6)
        # the tower's output: within float32 rounding, one bfloat16 step (transformers 5 runs SDPA per window,
        # 4.51.3 one SDPA with a block mask over them all: modeling_qwen2_5_vl.py L300-307)
        torch.testing.assert_close(pipe.visual_tokens(prep), off["image_embeds"], rtol=0,
                                   atol=1e-3 if exact else 1e-6)
        torch.testing.assert_close(local, off["local"], **tol)
        torch.testing.assert_close(global_, off["global_"], **tol)
        for budget, got, fed in zip(budgets, off["runs"], off["fed"], strict=True):
            layer = vq.default_layer(num_layers)
            visual, keep = vq.stage_counts(budget, n, num_layers)
            sel = pipe.spec("vscan").select(LLMContext(pipe, prep, pipe.visual_tokens(prep)), budget)
            stage1 = torch.arange(n) if got["keep"] is None else got["keep"].long()
            assert torch.equal(sel.parts["stage1_kept"], stage1), budget
            if got["keep"] is not None:
                assert sel.parts["local"].tolist() == got["local"].tolist()  # the official pick order
                assert sel.parts["global"].tolist() == got["global_"].tolist()
                merged, kept, _ = vq.vision_stage(LLMContext(pipe, prep, pipe.visual_tokens(prep)), visual)
                # the merge on the official side's own features: the official merged features, bit for bit
                assert torch.equal(vq.token_merging(off["image_embeds"], kept), got["embeds"])
                if not exact:
                    torch.testing.assert_close(merged, got["embeds"], rtol=0, atol=1e-5)
                else:  # features a bfloat16 step away can move a dropped token to another kept one: only the
                    # kept tokens whose merged set changed differ by more than a step
                    ours_to = _nearest(pipe.visual_tokens(prep), kept)
                    theirs_to = _nearest(off["image_embeds"], kept)
                    differ = ours_to != theirs_to
                    changed = set(ours_to[differ].tolist()) | set(theirs_to[differ].tolist())
                    moved = (merged.float() - got["embeds"].float()).abs().amax(dim=1) > 1e-3
                    assert set(moved.nonzero().flatten().tolist()) <= changed, budget
            assert sel.parts["stage_visual"].tolist() == [len(stage1), keep]
            # the LLM stage: bfloat16 on the same features (a merge moved by the tower's rounding moves the
            # middle layer's ranking too), float32 on the official side's own
            got = fed if exact else got
            assert sel.indices.tolist() == stage1[got["rows"].sort().values].tolist(), budget
            atol = 1e-5 if dtype == "float32" else 5e-2
            torch.testing.assert_close(sel.llm_output[0].float(), got["final"].float(), rtol=0, atol=atol)
            assert sel.prune_layer == (layer if keep < len(stage1) else 0)


def test_the_official_side_ran_under_the_pin_with_every_tensor_of_the_model():
    for got in official_side(False).values():
        versions = got["versions"]
        assert versions["transformers"] == "4.51.3" and "pinned" in versions["transformers_path"]
        assert got["missing_keys"] == []


@pytest.mark.parametrize("dtype", DTYPES)
def test_rope_ids_scores_picks_and_states_are_the_official_ones(dtype):
    _check(dtype, every=False)


@pytest.mark.slow
@pytest.mark.parametrize("dtype", DTYPES)
def test_budgets_across_the_range_on_odd_sizes_under_the_pin(dtype):
    _check(dtype, every=True)
