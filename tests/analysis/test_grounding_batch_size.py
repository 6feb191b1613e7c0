"""``eval-grounding --batch-size B``: B prompts (of a chunk's images) per LLM forward give batch 1's tables
(float32: identical rows, byte-identical summary.csv, B not dividing the prompts); the methods that cannot
batch run at 1 and are named once (screen, summary.txt, config.json); each run's first batch is checked
against batch 1 (``batch_check.csv``: 0 pixels differ in float32, rounding only in bfloat16); B = 1 writes
what it wrote before; resuming and sharding keep working with B."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from tests.fixtures.cli import run_grounding as _run

pytestmark = pytest.mark.usefixtures("one_glamm_pipeline")
ROOT = Path(__file__).resolve().parents[2]

#: three images, one official prompt each (B = 2 does not divide them); fastv cannot batch
ARGS = ("--protocol", "official", "--image-ids", "34,71,81", "--methods", "none,litelvlm,fastv", "--budgets",
        8, "--n-boot", 20)


def _same_tables(a: Path, b: Path) -> None:
    pd.testing.assert_frame_equal(pd.read_parquet(a / "grounding.parquet"),
                                  pd.read_parquet(b / "grounding.parquet"))
    for name in ("summary.csv", "comparisons.csv", "claims.csv"):
        assert (a / name).read_bytes() == (b / name).read_bytes(), name


def test_batch_size_gives_batch_ones_tables_and_names_what_runs_at_one(coco128, tmp_path, capsys):
    assert _run(coco128, tmp_path / "one", *ARGS) == 0
    capsys.readouterr()
    assert _run(coco128, tmp_path / "two", *ARGS, "--batch-size", 2) == 0
    said = capsys.readouterr().out
    _same_tables(tmp_path / "one", tmp_path / "two")
    assert said.count("--batch-size 2: run at batch 1: fastv (fastv prunes inside the LLM") == 1  # said once
    assert "0 of " in said and " mask pixels differ" in said
    summary = (tmp_path / "two" / "summary.txt").read_text()
    assert "run at batch 1: fastv" in summary and "0 of " in summary and " mask pixels differ" in summary
    check = pd.read_csv(tmp_path / "two" / "batch_check.csv")
    assert set(zip(check["method"], check["budget"])) == {("none", 576), ("litelvlm", 8)}  # fastv ran at 1
    assert (check["differing"] == 0).all() and (check["prompts"] == 2).all() and (check["pixels"] > 0).all()
    cfg_one = json.loads((tmp_path / "one" / "config.json").read_text())
    cfg_two = json.loads((tmp_path / "two" / "config.json").read_text())
    assert "batch_size" not in cfg_one and "unbatched" not in cfg_one  # B = 1: the config of before
    assert not (tmp_path / "one" / "batch_check.csv").exists()
    assert "batch" not in (tmp_path / "one" / "summary.txt").read_text()
    assert cfg_two["batch_size"] == 2 and set(cfg_two["unbatched"]) == {"fastv"}


@pytest.mark.odd_case("arguments", "--batch-size 0", "eval-grounding",
                      "exit 2, one line naming the option, before the model loads; "
                      "--out not created")
def test_batch_size_below_one_refused(coco128, tmp_path, capsys):
    assert _run(coco128, tmp_path / "a", "--batch-size", 0) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert err.strip().splitlines()[
        -1] == "litelvlm eval-grounding: error: argument --batch-size: must be >= 1, got 0; see --help"
    assert not (tmp_path / "a").exists()


@pytest.mark.slow
def test_a_different_batch_size_is_refused_and_the_same_resumes(coco128, tmp_path, capsys):
    base = ("--protocol", "per-expression", "--methods", "none,litelvlm", "--budgets", 16, "--n-boot", 20,
            "--chunk", 1, "--batch-size", 3)
    assert _run(coco128, tmp_path / "b", *base, "--limit", 1) == 0
    assert _run(coco128, tmp_path / "b", *base[:-1], 2, "--limit", 2) == 2
    assert "different configuration" in capsys.readouterr().err
    assert _run(coco128, tmp_path / "b", *base, "--limit", 2) == 0       # grown: resumes the finished image
    assert _run(coco128, tmp_path / "fresh", *base[:-2], "--limit", 2) == 0
    _same_tables(tmp_path / "b", tmp_path / "fresh")


@pytest.mark.slow
@pytest.mark.parametrize("model", ["unipixel-tiny-random:0", "sa2va-tiny-random:0"])
def test_batch_size_on_one_expression_per_prompt_families(coco128, tmp_path, model):
    args = ("--model", model, "--limit-images", 2, "--methods", "none,litelvlm,divprune", "--budgets", 8,
            "--n-boot", 20, "--chunk", 2)
    from litelvlm.cli import main

    def run(out, *extra):
        return main(
            ["eval-grounding", "--refer-dir", str(coco128), "--out", str(out), *map(str, args + extra)])

    assert run(tmp_path / "one") == 0 and run(tmp_path / "b", "--batch-size", 4) == 0
    _same_tables(tmp_path / "one", tmp_path / "b")
    assert (pd.read_csv(tmp_path / "b" / "batch_check.csv")["differing"] == 0).all()


@pytest.mark.slow
def test_bfloat16_batches_report_their_rounding(coco128, tmp_path):
    assert _run(coco128, tmp_path / "b", "--dtype", "bfloat16", "--limit", 3, "--methods", "none,litelvlm",
                "--budgets", 16, "--n-boot", 20, "--batch-size", 3) == 0
    check = pd.read_csv(tmp_path / "b" / "batch_check.csv")
    assert (check["pixels"] > 0).all() and (check["differing"] <= 0.01 * check["pixels"]).all()
    assert "mask pixels differ" in (tmp_path / "b" / "summary.txt").read_text()


@pytest.mark.slow  # two processes of a real run
def test_two_processes_with_batch_size_equal_one(coco128, tmp_path):
    from tests.fixtures.launch import torchrun

    cmd = ["eval-grounding", "--refer-dir", str(coco128), "--model", "tiny-random:0", "--protocol",
           "per-expression",
           "--image-ids", "34,71,81", "--chunk", "2", "--methods", "none,litelvlm", "--budgets", "16",
           "--n-boot", "20", "--batch-size", "2"]
    env = {**os.environ, "LITELVLM_CACHE": str(tmp_path / "cache"), "HF_HUB_OFFLINE": "1",
           "OMP_NUM_THREADS": "1"}
    two = subprocess.run(torchrun(2) + cmd + ["--out", str(tmp_path / "two")], env=env, cwd=ROOT,
                         capture_output=True, text=True, timeout=600)
    assert two.returncode == 0, two.stderr[-3000:]
    assert "process 1/2" in two.stderr
    one = subprocess.run([sys.executable, "-m", "litelvlm.cli"] + cmd[:-1]
                         + ["1", "--out", str(tmp_path / "one")],
                         env=env, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert one.returncode == 0, one.stderr[-3000:]
    _same_tables(tmp_path / "one", tmp_path / "two")


#: (module, function): the study's scheduling, which must call one path at every batch size
SCHEDULERS = [("analysis/grounding/compute.py", "_evaluate"),
              ("analysis/common/grounding/grounding_scoring.py", "evaluate_images")]


@pytest.mark.parametrize("where", SCHEDULERS, ids=lambda w: w[1])
def test_the_study_never_picks_a_path_by_batch_size(where):
    """The chunk's images go to ``evaluate_images`` and its prompts to ``ground_many`` at every
    ``--batch-size`` (``ground_many`` runs what cannot share a forward one by one itself): no branch of the
    scheduling reads the batch size or ``batch_error`` (an expression may: the batch check and ``prune_ms``
    are reporting)."""
    import ast

    path, name = where
    tree = ast.parse((ROOT / path).read_text())
    fn = next(n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef) and n.name == name)
    branches = [n for n in ast.walk(fn) if isinstance(n, ast.If)]
    read = [ast.unparse(b.test) for b in branches
            if any(getattr(n, "attr", getattr(n, "id", "")) in ("batch_size", "batch_error")
                   for n in ast.walk(b.test))]
    assert read == [], f"{path}:{name} picks a path by {read}"
