"""``litelvlm eval-video``'s per-frame budgets: one :class:`~litelvlm.budget.Budget` from the command line to
the family's runner. A bad budget (no budget, ``all``, or outside a frame's 1..576 patches) exits 2 naming
``--budgets`` before torch loads and before anything is written; the runs reach the family's video path as
Budget objects (the baseline once at 576), and the parts and tables hold the budget's column, so a folder
written before keeps its part ids and resumes."""

from __future__ import annotations

import json
import subprocess
import sys
import types
import zlib

import numpy as np
import pandas as pd
import pytest

from litelvlm.budget import Budget
from litelvlm.cli import main

HEAVY = ("torch", "transformers", "open_clip", "pandas", "scipy", "matplotlib")

#: each bad ``--budgets`` in one fresh interpreter: (exit status, stderr, whether the folder exists), then the
#: heavy modules loaded
CODE = """
import contextlib, io, json, os, sys
from litelvlm.cli import main
out, results = sys.argv[1], []
for value in json.loads(sys.argv[2]):
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        try:
            rc = main(["eval-video", "--out", out, "--budgets", value])
        except SystemExit as e:
            rc = e.code
    results.append([rc, err.getvalue(), os.path.exists(out)])
print(json.dumps({"results": results, "heavy": sorted(m for m in json.loads(sys.argv[3]) if m in sys.modules)}))
"""  # noqa: E501

BAD = {"0": "K >= 1 of visual tokens; got '0'", "577": "1 <= K <= 576", "all": "unpruned baseline's budget",
       "x": "got 'x'"}


def test_a_bad_budget_exits_2_naming_the_option_before_torch(tmp_path):
    out = tmp_path / "out"
    done = subprocess.run([sys.executable, "-c", CODE, str(out), json.dumps(list(BAD)), json.dumps(HEAVY)],
                          capture_output=True, text=True, timeout=120)
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["heavy"] == []
    for (value, why), (rc, err, written) in zip(BAD.items(), report["results"], strict=True):
        assert rc == 2 and not written, (value, rc, err)
        assert "--budgets" in err and why in err, (value, err)


class FakeRunner:
    """A video path's runner that segments each expression by its own ground truth and records what it
    gets."""

    clip_name = None
    model = types.SimpleNamespace(dtype="torch.float32")
    # the pipeline the video path runs: its LLM's attention kernel is recorded, its device decides --encoders
    pipe = types.SimpleNamespace(device="cpu", language_model=types.SimpleNamespace(
        config=types.SimpleNamespace(_attn_implementation="eager")))
    extra_columns: list[str] = []

    def __init__(self, seen: dict) -> None:
        self.seen = seen

    def new_video(self, decoded=None) -> None:
        pass

    def expression(self, rec, method, budget):
        import torch

        self.seen["expression"].append((rec.video, method, budget))
        masks = torch.from_numpy(np.stack([rec.mask(i) for i in range(len(rec.frames))])).float()
        return masks, budget.tokens, {"llm_visual_tokens": 3328}

    def ground(self, recs, method, budget, batched=True):
        """The study's one entry point: each expression's :meth:`expression` (a fake runs no forward)."""
        return [(rec, budget.tokens, self.expression(rec, method, budget)) for rec in recs]

    def result(self, rec, prep, k, out):
        return out

    def plan_methods(self, given, budgets):
        self.seen["plan_methods"].append(list(budgets))
        return given

    def config(self) -> dict:
        return {}

    def summary(self, summary, expr):
        return summary


class FakeEval:
    """A family's video path whose runner is :class:`FakeRunner`."""

    note = "a fake video path"

    def __init__(self) -> None:
        self.seen = {"check_options": [], "method_errors": [], "plan_methods": [], "expression": []}

    def check_options(self, a, budgets) -> None:
        self.seen["check_options"].append(list(budgets))

    def method_errors(self, methods, budgets) -> list[str]:
        self.seen["method_errors"].append(list(budgets))
        return []

    def runner(self, a) -> FakeRunner:
        return FakeRunner(self.seen)


@pytest.fixture
def fake(monkeypatch) -> FakeEval:
    import analysis.video.compute as compute
    import analysis.video.options as options

    ev = FakeEval()
    monkeypatch.setattr(options, "video_eval", lambda model: ev)
    monkeypatch.setattr(compute, "video_eval", lambda model: ev)
    return ev


def test_the_runs_reach_the_runner_as_budgets_and_the_parts_keep_their_ids(tmp_path, fake):
    from litelvlm.runs.parts import PartStore

    out = tmp_path / "video"
    argv = ["eval-video", "--out", str(out), "--anno-sets", "0", "--synthetic-videos", "1",
            "--synthetic-frames", "3",
            "--methods", "litelvlm,fastv", "--budgets", "196", "81", "--n-boot", "10"]
    assert main(argv) == 0
    want = [Budget(196), Budget(81)]
    # the family's light checks and its runner's plan
    for call in ("check_options", "method_errors", "plan_methods"):
        assert fake.seen[call] and all(budgets == want for budgets in fake.seen[call]), call
    got = fake.seen["expression"]
    assert all(type(b) is Budget for _, _, b in got)
    runs = [("none", Budget(576))] + [(m, b) for m in ("litelvlm", "fastv") for b in want]
    # every expression of the video per run: the baseline once at 576 a frame, then methods x budgets
    assert list(dict.fromkeys((m, b) for _, m, b in got)) == runs
    s = pd.read_csv(out / "summary.csv")
    assert list(zip(s.method, s.budget, strict=True)) == [(m, b.column) for m, b in runs]
    assert (s.J == 1).all() and (s.context_tokens == s.budget).all()
    video = got[0][0]
    # the part ids of the int budgets a folder written before holds: such a folder resumes
    assert PartStore(out).done() == {zlib.crc32(f"{video}|{m}@{b.tokens}".encode()) for m, b in runs}
    first = (out / "summary.csv").read_bytes()
    got.clear()
    assert main(argv) == 0 and got == []   # resumed: nothing recomputed
    assert (out / "summary.csv").read_bytes() == first
