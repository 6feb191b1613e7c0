"""Per-frame budget allocation (``litelvlm.videoglamm.allocation``, this project's idea) and ``eval-video
--allocation``: the totals, the caps, the squares the pooling needs, the relevance rule, the CLI."""

from __future__ import annotations

import json
import math
import random

import pandas as pd
import pytest
import torch

from litelvlm.cli import main
from litelvlm.errors import LiteLVLMError
from litelvlm.videoglamm.allocation import (
    frame_allocation,
    integer_budgets,
    relevance_weights,
    square_budgets,
)

FAST = ["--anno-sets", "0", "--synthetic-videos", "1", "--synthetic-frames", "2", "--synthetic-seed", "11",
        "--methods", "litelvlm"]


def _weights(rng: random.Random, frames: int = 16) -> list[float]:
    kind = rng.randrange(3)
    if kind == 0:
        return [rng.random() for _ in range(frames)]
    if kind == 1:  # one frame dominates (its target passes the 576 cap)
        return [1.0 if f == rng.randrange(frames) else rng.random() * 1e-3 for f in range(frames)]
    return [float(rng.randrange(3)) for _ in range(frames - 1)] + [1.0]  # zeros allowed, not all


def test_uniform_weights_give_every_frame_k():
    for k in range(1, 577):
        assert integer_budgets([1] * 16, 16 * k) == [k] * 16
        assert frame_allocation([2.5] * 16, k, "direct") == [k] * 16
        if math.isqrt(k) ** 2 == k:
            assert frame_allocation([1] * 16, k, "pool") == [k] * 16 == frame_allocation(
                [1] * 16, k, "pool-min")


def test_integer_budgets_keep_the_total_within_the_caps():
    rng = random.Random(0)
    for _ in range(400):
        w, total = _weights(rng), rng.randrange(16, 16 * 576 + 1)
        got = integer_budgets(w, total)
        assert sum(got) == total and all(1 <= k <= 576 for k in got), (w, total, got)
        targets = [total * x / sum(w) for x in w]
        uncapped = [i for i, t in enumerate(targets) if 1 <= t <= 576 and got[i] < 576]
        if len(uncapped) == 16:  # no cap and no floor at work: each frame within one token of its target
            assert all(abs(got[i] - targets[i]) < 1 for i in range(16))
        heavier = [(i, j) for i in range(16) for j in range(16) if w[i] > w[j]]
        assert all(got[i] >= got[j] for i, j in heavier)  # a heavier frame never gets fewer tokens
    assert integer_budgets([1] + [0] * 15, 16 * 81) == [576] + [48] * 15  # the excess shared by the others
    with pytest.raises(LiteLVLMError):
        integer_budgets([1] * 16, 15)
    with pytest.raises(LiteLVLMError, match="non-negative"):
        integer_budgets([1] * 15 + [-1], 100)


def test_square_budgets_are_squares_within_the_total():
    rng = random.Random(1)
    for _ in range(400):
        w, k = _weights(rng), rng.randrange(1, 577)
        got = frame_allocation(w, k, rng.choice(["pool", "pool-min"]))
        assert all(math.isqrt(b) ** 2 == b and 1 <= b <= 576 for b in got), got
        assert sum(got) <= 16 * k or all(b == 1 for b in got)
        # no frame could still grow by one side within the total (the fill stops only when nothing fits)
        room = 16 * k - sum(got)
        assert all(math.isqrt(b) == 24 or 2 * math.isqrt(b) + 1 > room for b in got)
    # the capped frame's excess shared equally (zero weights): targets 48, sides 6, then 13 frames grow to 7
    # (+13 each)
    assert square_budgets([1] + [0] * 15, 16 * 81) == [576] + [49] * 13 + [36] * 2   # 1285 of 1296
    # frames raised to one token shrink the first
    assert square_budgets([1] + [0] * 15, 32) == [16] + [1] * 15


def test_relevance_weights_follow_the_frames_best_similarity():
    from litelvlm.clip.traces import TextTrace, VisionTrace
    from litelvlm.pruning.scores import similarity
    from litelvlm.videoglamm.pruning import frame_inputs

    class Backend:  # projected patches = the hidden states (identity projection), as similarity reads them
        def project_patches(self, patches):
            return patches

    g = torch.Generator().manual_seed(0)
    hs = tuple(torch.randn(16, 10, 8, generator=g) for _ in range(3))
    trace = VisionTrace(hidden_states=hs, grid=(3, 3), num_prefix_tokens=1, backend=Backend())
    text = TextTrace(texts=["x"], input_ids=torch.zeros(1, 2, dtype=torch.long), eos_index=torch.tensor([1]),
                     text_embeds=torch.randn(1, 8, generator=g), hidden_states=None, truncated=[False],
                     backend=None)
    w = relevance_weights(trace, text, logit_scale=100.0)
    best = torch.stack([similarity(frame_inputs(trace, text, f), kind="cosine")[0].max() for f in range(16)])
    assert sum(w) == pytest.approx(1.0) and torch.allclose(torch.tensor(w), torch.softmax(100 * best, 0),
                                                           atol=1e-6)
    assert int(torch.tensor(w).argmax()) == int(best.argmax())
    assert relevance_weights(trace, text, logit_scale=0.0) == pytest.approx([1 / 16] * 16)


@pytest.mark.parametrize("allocation, arrangement", [
    ("relevance", "pool-min"), pytest.param(",".join(["3"] + ["1"] * 15), "direct", marks=pytest.mark.slow)])
def test_cli_allocation(tmp_path, allocation, arrangement):
    out = tmp_path / "video"
    assert main(["eval-video", "--out", str(out), *FAST, "--budgets", "81", "--allocation", allocation,
                 "--arrangement", arrangement]) == 0
    expr = pd.read_parquet(out / "expressions.parquet").set_index("method")
    budgets = [int(b) for b in expr.loc["litelvlm", "frame_budgets"].split(",")]
    assert len(budgets) == 16 and expr.loc["litelvlm", "kept_tokens"] == sum(budgets)
    assert expr.loc["none", "frame_budgets"] == ",".join(["576"] * 16)
    # explicit weights: 3 x the others' share on the first frame, total exactly 16 K
    if arrangement == "direct":
        assert budgets == frame_allocation([3] + [1] * 15, 81, "direct") and sum(budgets) == 16 * 81
        assert budgets[0] > budgets[1] and expr.loc["litelvlm", "llm_context_tokens"] == 16 * 81
    else:  # squares within 16 K; pool-min gives the LLM min(side, 12)^2 a frame
        assert all(math.isqrt(b) ** 2 == b for b in budgets) and sum(budgets) <= 16 * 81
        llm = sum(min(math.isqrt(b), 12) ** 2 for b in budgets)
        assert expr.loc["litelvlm", "llm_context_tokens"] == llm
    s = pd.read_csv(out / "summary.csv")
    assert list(s.method) == ["none", "litelvlm"] and s[["J", "F"]].apply(
        lambda c: c.between(0, 1)).all().all()


    assert json.loads((out / "config.json").read_text())["allocation"] == allocation
    # another allocation in the same folder is refused
    assert main(
        ["eval-video", "--out", str(out), *FAST, "--budgets", "81", "--arrangement", arrangement]) == 2


@pytest.mark.parametrize("bad", ["even", "1,2,3", ",".join(["0"] * 16), ",".join(["1"] * 15 + ["-1"])])
def test_cli_refuses_a_bad_allocation_before_writing(tmp_path, bad, capsys):
    out = tmp_path / "video"
    assert main(["eval-video", "--out", str(out), "--allocation", bad]) == 2
    assert "--allocation" in capsys.readouterr().err and not out.exists()
