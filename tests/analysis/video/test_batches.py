"""``eval-video --batch-size B``: B expressions of one video per LLM forward where the runner can batch, the
rows, tables and part ids those of batch 1, each (method, budget)'s first batch checked against batch 1
(``batch_check.csv``), the methods that run at batch 1 named once with the reason, ``config.json`` recording B
only when not 1; resumed and sharded folders as at batch 1. The study goes one way at every B and for every
method (chunks of B through the runner's ``ground``, which runs what cannot share a forward one by one
itself): ``batch_error`` and B decide only what is reported. A fake video path here (each expression segmented
by its own ground truth, the chunks recorded); the tiny models' masks are
``tests/litelvlm/video/test_pipeline_runner.py``'s."""
from __future__ import annotations

import ast
import json
import types
from pathlib import Path

import pandas as pd
import pytest
import torch

from analysis.video.options import VideoArgs, check_args
from litelvlm.cli import main
from tests.analysis.video import test_compute_budgets, test_compute_shards

_tables = test_compute_shards._tables
ARGV = ["--anno-sets", "0,1", "--synthetic-videos", "3", "--synthetic-frames", "3", "--methods",
        "litelvlm,fastv", "--budgets", "81", "--n-boot", "20"]


class BatchingRunner(test_compute_budgets.FakeRunner):
    """The fake runner recording each ``ground`` call as (method, expressions, batched) (fastv runs at batch
    1, as a method pruning inside the LLM: the runner's own affair)."""

    def batch_error(self, method):
        return "fastv prunes inside the LLM" if method == "fastv" else None

    def ground(self, recs, method, budget, batched=True):
        self.seen["batches"].append((method, len(recs), batched))
        outs = []
        for rec in recs:
            masks, _, _ = self.expression(rec, method, budget)
            self.seen["expression"].pop()
            outs.append(types.SimpleNamespace(masks=masks > 0.5, mask_logits=masks * 2 - 1))
        return [(rec, budget.tokens, out) for rec, out in zip(recs, outs, strict=True)]

    def result(self, rec, prep, k, out):
        self.seen["expression"].append((rec.video, "batched", k))
        return out.masks.float(), k, {"llm_visual_tokens": 3328}


@pytest.fixture
def fake(monkeypatch):
    import analysis.video.compute as compute
    import analysis.video.options as options

    ev = test_compute_budgets.FakeEval()
    ev.seen["batches"] = []
    ev.runner = lambda a: BatchingRunner(ev.seen)
    monkeypatch.setattr(options, "video_eval", lambda model: ev)
    monkeypatch.setattr(compute, "video_eval", lambda model: ev)
    return ev


def test_the_batch_size_is_kept_and_nothing_is_said_before_the_model_loads(tmp_path, capsys):
    a = VideoArgs(out=str(tmp_path / "video"), model="sa2va-tiny-random:0", methods=["litelvlm"],
                  budgets=["64"], batch_size=4)
    check_args(a)
    assert a.batch_size == 4 and capsys.readouterr().err == "" and not (tmp_path / "video").exists()


def _chunks(seen: list, method: str) -> list[int]:
    """The sizes of the chunks the study handed ``ground`` for ``method`` (the batch check's calls aside)."""
    return [n for m, n, batched in seen if m == method and batched]


def test_batches_give_batch_one_tables_and_say_the_unbatched_method_once(tmp_path, fake, capsys):
    assert main(["eval-video", "--out", str(tmp_path / "one"), *ARGV]) == 0
    one = _tables(tmp_path / "one")
    # batch 1 is the same way: chunks of one through ``ground``, no check
    assert {(n, batched) for _, n, batched in fake.seen["batches"]} == {(1, True)}
    assert "batch_size" not in json.loads((tmp_path / "one" / "config.json").read_text())
    assert not (tmp_path / "one" / "batch_check.csv").exists()
    capsys.readouterr(), fake.seen["batches"].clear()
    out = tmp_path / "three"
    assert main(["eval-video", "--out", str(out), *ARGV, "--batch-size", "4"]) == 0
    said = capsys.readouterr().out
    assert said.count("run at batch 1: fastv (fastv prunes inside the LLM)") == 1
    assert _tables(out) == one   # the rows and tables of batch 1, byte for byte
    rows = pd.read_parquet(tmp_path / "one" / "expressions.parquet")
    counts = rows[rows.method == "none"].groupby("video", sort=False).size().tolist()
    # 2 sets x (3, 3, 1) objects: batches of 4 then 2 (then one of 2), baseline and litelvlm
    assert counts == [6, 6, 2]
    # every method the same way (fastv too: its runner grounds it one by one)
    assert all(_chunks(fake.seen["batches"], m) == [4, 2, 4, 2, 2] for m in ("none", "litelvlm", "fastv"))
    # the first batch of each run checked, fastv's not (reported as run at batch 1)
    assert sorted((m, n) for m, n, batched in fake.seen["batches"] if not batched) == [("litelvlm", 4),
                                                                                       ("none", 4)]
    config = json.loads((out / "config.json").read_text())
    assert config["batch_size"] == 4 and config["unbatched"] == {"fastv": "fastv prunes inside the LLM"}
    check = pd.read_csv(out / "batch_check.csv")
    assert list(check.method) == ["litelvlm", "none"] and (check.differing == 0).all() and (
        check.prompts == 4).all()
    summary = (out / "summary.txt").read_text()
    assert "batch check (--batch-size 4 against 1" in summary and "0 of" in summary and "fastv" in summary
    fake.seen["batches"].clear(), fake.seen["expression"].clear()
    # resumed: nothing recomputed
    assert main(["eval-video", "--out", str(out), *ARGV, "--batch-size", "4"]) == 0
    assert fake.seen["batches"] == [] and fake.seen["expression"] == [] and _tables(out) == one


def test_a_sharded_batched_run_equals_the_single_run(tmp_path, fake, monkeypatch):
    assert main(["eval-video", "--out", str(tmp_path / "one"), *ARGV]) == 0
    one = _tables(tmp_path / "one")
    import analysis.video.compute as compute

    argv = ["eval-video", "--out", str(tmp_path / "two"), *ARGV, "--batch-size", "2"]
    calls: list[int] = []
    second = test_compute_shards.FakeShards(1, 2)
    first = test_compute_shards.FakeShards(0, 2, at_wait=lambda: calls.append(main(argv)))
    made = iter([first, second])
    fake.seen["batches"].clear()
    with monkeypatch.context() as m:
        m.setattr(compute, "Shards", lambda device: next(made))
        assert main(argv) == 0 and calls == [0]
    assert _tables(tmp_path / "two") == one
    # 2 runs x (6 + 6 + 2) expressions / 2
    assert all(_chunks(fake.seen["batches"], m) == [2] * 7 for m in ("none", "litelvlm", "fastv"))
    assert len(pd.read_csv(tmp_path / "two" / "batch_check.csv")) == 2        # checked by the main process


def test_a_folder_of_batch_one_is_not_resumed_at_another_batch_size(tmp_path, fake, capsys):
    out = tmp_path / "one"
    assert main(["eval-video", "--out", str(out), *ARGV]) == 0
    assert main(["eval-video", "--out", str(out), *ARGV, "--batch-size", "2"]) == 2
    # as eval-grounding: bfloat16 rounds otherwise
    assert "differs in: --batch-size)" in capsys.readouterr().err
    more = [a if a != "litelvlm,fastv" else "litelvlm,fastv,random" for a in ARGV]
    assert main(["eval-video", "--out", str(tmp_path / "two"), *ARGV, "--batch-size", "2"]) == 0
    # a method added
    assert main(["eval-video", "--out", str(tmp_path / "two"), *more, "--batch-size", "2"]) == 0


@pytest.mark.parametrize("batch_size", [1, 2, 3])
@pytest.mark.parametrize("method", ["litelvlm", "fastv"])
def test_expression_results_is_one_way_at_every_batch_size_and_method(method, batch_size):
    from analysis.video.batches import expression_results

    calls = []
    run = types.SimpleNamespace(   # no ``expression``: the study has one entry point
        batch_error=lambda m: "prunes inside the LLM" if m == "fastv" else None,
        ground=lambda recs, m, b, batched=True: calls.append(list(recs)) or [(r, 1, r * 10) for r in recs],
        result=lambda rec, prep, k, out: (torch.zeros(1), k, {"out": out}))
    got = expression_results(run, [1, 2, 3, 4, 5], method, None, batch_size)
    assert [extra["out"] for _, _, extra in got] == [10, 20, 30, 40, 50]
    assert calls == [[1, 2, 3, 4, 5][i:i + batch_size] for i in range(0, 5, batch_size)]


#: what a function of ``analysis/video/`` that grounds the rows calls (the runner's ``ground``, ``result``
#: or ``expression``, or ``expression_results``); the batch check (``compare_video``), which grounds at batch
#: 1 to report, aside
GROUNDING_CALLS = {"ground", "result", "expression", "expression_results"}


def test_the_study_never_picks_a_path_by_batch_error_or_batch_size():
    root = Path(__file__).resolve().parents[3] / "analysis" / "video"
    grounding = []
    for path in sorted(root.glob("*.py")):
        tree = ast.parse(path.read_text())
        # the runner's one-expression ``expression`` is not the study's way in
        assert not [n for n in ast.walk(tree) if isinstance(n, ast.Attribute) and n.attr == "expression"
                    and isinstance(n.ctx, ast.Load)], path
        for fn in ast.walk(tree):
            if not isinstance(fn, ast.FunctionDef | ast.AsyncFunctionDef) or fn.name == "compare_video":
                continue
            called = {getattr(c.func, "attr", getattr(c.func, "id", "")) for c in ast.walk(fn)
                      if isinstance(c, ast.Call)}
            if not called & GROUNDING_CALLS:
                continue
            grounding.append(fn.name)
            tests = [n.test for n in ast.walk(fn) if isinstance(n, ast.If | ast.IfExp | ast.While)]
            tests += [t for n in ast.walk(fn) if isinstance(n, ast.comprehension) for t in n.ifs]
            read = [ast.unparse(t) for t in tests
                    if {getattr(n, "attr", getattr(n, "id", "")) for n in ast.walk(t)}
                    & {"batch_size", "batch_error"}]
            assert read == [], f"{path.name}:{fn.name} picks a path by {read}"
    assert {"expression_results", "video_part", "expression_part"} <= set(grounding)
