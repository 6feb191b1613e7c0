"""HiPrune's Qwen2.5-VL variant against its official side run under HiPrune's pin, in a second environment
(``tests/pinned_env.py``: transformers 4.52.0, Danielement321/HiPrune @6e83a12 ``setup_qwen.sh`` L11).

The official side (``tests/pinned_scripts/hiprune_qwen_official.py``) loads the written random folder into
4.52.0's own ``Qwen2_5_VLForConditionalGeneration`` and runs its tower (the official file's tower statements
are 4.52.0's: patch embedding, ``rot_pos_emb``, ``get_window_index``, the blocks), takes each block's input
there, and runs the transcribed additions (each block's flash or eager weights, their reduction per merged
token, the selection L1854-1896) on them. Here: the block inputs (RoPE tables, window order, ``cu_seqlens``,
hidden states), the block scores and the kept tokens equal ours, on the same pixels, at the edges and the
paper's ratios (every budget and odd sizes: ``slow``). The tower runs SDPA on both sides (the official
benchmark's flash attention does not run on CPUs)."""

from __future__ import annotations

import functools
import json
import tempfile
from pathlib import Path

import pytest
import torch

from litelvlm.errors import LiteLVLMError
from litelvlm.methods.hiprune_qwen import block_scores, select_tokens
from tests.fixtures.images import noise_image
from tests.pinned_env import run_pinned

MODEL = "unipixel-tiny-random:0"
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16}
#: (impl, alpha, object layer (1-based)) of the official runs: the official alpha at the tiny tower's
#: default object layer, and a window block with a large alpha (short selections and crashes)
RUNS = [("flash", 0.1, 2), ("eager", 0.1, 2), ("eager", 0.5, 1), ("flash", 1.0, 2)]


@functools.cache
def _pipe(dtype: str):
    from litelvlm.registry.families import load_pipeline

    return load_pipeline(MODEL, dtype=DTYPES[dtype])


def _budgets(n: int, every: bool) -> list[int]:
    """The edges and the paper's ratios (64, 128, 192 of 576), or every budget."""
    return list(range(1, n + 1)) if every else sorted({1, 2, *(round(n * k / 576) for k in (64, 128, 192)),
                                                      n - 1, n})


def _images(every: bool) -> list[tuple[int, int]]:
    return [(97, 131), (301, 45), (45, 301)] if every else [(97, 131)]


@functools.cache
def official_side(every: bool) -> dict:
    """dtype -> [(size, prepared input, the official results)], every dtype in one launch of the pinned
    interpreter (``tests/pinned_scripts/batch.py``)."""
    from litelvlm.unipixel.checkpoint import random_unipixel_dir

    folder = str(random_unipixel_dir("tiny", 0))
    got: dict = {}
    with tempfile.TemporaryDirectory(prefix="hiprune-pin-") as tmp:
        jobs, preps = [], {}
        for dtype in DTYPES:
            p, images = _pipe(dtype), []
            preps[dtype] = [p.prepare(noise_image(*s, seed=sum(s)), ["the cup"]) for s in _images(every)]
            for prep in preps[dtype]:
                v, n = p.vision(prep), p.num_visual(prep)
                images.append({"pixel_values": v.pixel_values, "grid_thw": v.grid_thw,
                               "impls": ["flash", "eager"],
                               "runs": [[*run, _budgets(n, every)] for run in RUNS]})
            torch.save({"dtype": dtype, "tower_attn": "sdpa", "images": images}, Path(tmp) / f"{dtype}.pt")
            jobs.append(["hiprune_qwen_official.py", folder, str(Path(tmp) / f"{dtype}.pt"),
                         str(Path(tmp) / f"{dtype}-out.pt")])
        (Path(tmp) / "jobs.json").write_text(json.dumps(jobs))
        run_pinned("hiprune-qwen", "batch.py", str(Path(tmp) / "jobs.json"))
        for dtype in DTYPES:
            out = torch.load(Path(tmp) / f"{dtype}-out.pt", weights_only=False)
            got[dtype] = {"versions": out["versions"], "missing_keys": out["missing_keys"],
                          "cases": list(zip(_images(every), preps[dtype], out["cases"], strict=True))}
    return got


def _check(dtype: str, every: bool) -> None:
    p, official = _pipe(dtype), official_side(every)[dtype]
    for size, prep, off in official["cases"]:
        v, n = p.vision(prep), p.num_visual(prep)
        seen: dict = {}

        def keep(module, args, kwargs, b, seen=seen) -> None:
            seen[b] = (args[0], kwargs)

        handles = [blk.register_forward_pre_hook(functools.partial(keep, b=b), with_kwargs=True)
                   for b, blk in enumerate(v.visual.blocks)]
        try:
            with torch.no_grad():
                embeds = v.visual(v.pixel_values, grid_thw=v.grid_thw).pooler_output
        finally:
            for h in handles:
                h.remove()
        tol = dict(rtol=0, atol=1e-6) if dtype == "float32" else dict(rtol=0, atol=0)
        # the blocks' inputs: float32 and bfloat16 rounding (4.52 runs one masked SDPA over every window)
        near = dict(rtol=0, atol=1e-6) if dtype == "float32" else dict(rtol=0, atol=1.6e-2)
        for b, (h, kw) in seen.items():  # the RoPE tables, the window order, cu_seqlens: the same
            off_h, cos, sin, cu = off["block_inputs"][b]
            cos_sin = kw["position_embeddings"]
            assert torch.equal(cos_sin[0], cos) and torch.equal(cos_sin[1], sin)
            assert torch.equal(kw["cu_seqlens"].cpu(), cu.cpu()), (size, b)
            torch.testing.assert_close(h, off_h, **near)
        assert torch.equal(v.window_order(), off["window_index"])
        torch.testing.assert_close(embeds, off["embeds"], rtol=0, atol=1e-6 if dtype == "float32" else 1e-3)
        scores = {}
        for impl in ("flash", "eager"):
            scores[impl] = block_scores(v, list(range(len(v.visual.blocks))), impl)
            for b, theirs in enumerate(off["attn"][impl]):
                torch.testing.assert_close(scores[impl][b], theirs, **tol)
        width, through = v.grids()[0].llm_w, round(n * 192 / 576)  # the pipeline's select at one budget
        for (impl, alpha, layer, budget), kept in off["kept"].items():
            ours = scores[impl]
            if kept is None:  # the official top-k crashes: refused here
                with pytest.raises(LiteLVLMError, match="crashes"):
                    select_tokens(ours[layer - 1], ours[len(ours) - 1], budget, width, alpha=alpha)
                continue
            got = select_tokens(ours[layer - 1], ours[len(ours) - 1], budget, width, alpha=alpha)
            assert got.indices.tolist() == kept.tolist(), (size, impl, alpha, layer, budget)
            assert got.short == (len(kept) < budget)
            if budget == through:
                sel = p.spec("hiprune").select(p.context(prep), budget, attention=impl, alpha=alpha,
                                               object_layer=layer)
                assert sel.indices.tolist() == kept.tolist()
        assert n == off["embeds"].shape[0]


def test_the_official_side_ran_under_the_pin_with_every_tensor_of_the_tower():
    for got in official_side(False).values():
        versions = got["versions"]
        assert versions["transformers"] == "4.52.0" and "pinned" in versions["transformers_path"]
        assert got["missing_keys"] == []


@pytest.mark.parametrize("dtype", list(DTYPES))
def test_block_inputs_scores_and_kept_tokens_are_the_official_ones(dtype):
    _check(dtype, every=False)


@pytest.mark.slow
@pytest.mark.parametrize("dtype", list(DTYPES))
def test_every_budget_on_odd_sizes_under_the_pin(dtype):
    _check(dtype, every=True)
