"""benchmarks/gpu_check.sh: its steps and arguments (light), its summary's targets, and its dry run on a CPU
(slow)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "benchmarks" / "gpu_check.sh"
sys.path.insert(0, str(ROOT / "benchmarks"))
from gpu_check import card, env, summary  # noqa: E402

FULL = ("sa2va-qwen2_5-vl-3b-random", "unipixel-3b-random", "videoglamm-random", "glamm-7b-random")
TINY = ("tiny-random:0", "unipixel-tiny-random:0", "sa2va-tiny-random:0", "videoglamm-tiny-random:0")


def _steps(*args: str) -> dict[str, str]:
    done = subprocess.run(["bash", str(SCRIPT), "--print-steps", "--out", "/nowhere", *args],
                          capture_output=True, text=True, check=True, timeout=60)
    return dict(line.split(": ", 1) for line in done.stdout.splitlines())


def test_the_check_runs_eager_and_captured_for_every_model_beside_the_matmul_rate():
    steps = _steps()
    assert list(steps)[:2] == ["env", "matmul"] and list(steps)[-1] == "summary"
    assert "matmul '/nowhere' cuda" in steps["matmul"]
    for model in FULL:
        for prefill in ("eager", "captured"):
            cmd = steps[f"validate-{model}-{prefill}"]
            assert f"--model {model} " in cmd and f"--prefill {prefill}" in cmd and "--device cuda" in cmd
            budgets = "576 196 64" if model.startswith("videoglamm") else "576 192 64"  # pool: squares
            assert (f"--budgets {budgets} " in cmd and "--methods litelvlm fastv" in cmd
                    and "--repeats 3" in cmd)
            assert ("--matmul-tflops $(cat '/nowhere/rate.txt'" in cmd
                    and f"--out '/nowhere/validate/{model}-" in cmd)
    assert "--tokenizer" in steps["validate-glamm-7b-random-eager"]
    for prefill in ("eager", "captured"):  # a video model: validate's synthetic clip, no RefCOCO images
        assert "--refer-dir" not in steps[f"validate-videoglamm-random-{prefill}"]
        assert "--refer-dir" in steps[f"validate-glamm-7b-random-{prefill}"]
    # then the grounding throughput per batch size (benchmarks/bench_throughput.py)
    for model in [m for m in FULL if not m.startswith("videoglamm")]:
        cmd = steps[f"throughput-{model}"]
        assert f"bench_throughput.py' --models {model} " in cmd and "--device cuda" in cmd
        assert "--methods none litelvlm fastv" in cmd and "--batch-sizes 1 8 32 --budgets 192 64" in cmd
        assert "--memory-limit-gib 60" in cmd and f"--out '/nowhere/throughput/{model}'" in cmd
    assert "--tokenizer" in steps["throughput-glamm-7b-random"]
    # each model's cached random checkpoint dropped after its last step (the disk holds about two)
    names = list(steps)
    for model in FULL:
        family = model.split("-")[0]
        assert f"random-models/{family}-\"*-fast" in steps[f"drop-{model}"]
        assert names.index(f"drop-{model}") == names.index(f"validate-{model}-captured") + 1
    assert len(steps) == 2 + 4 * len(FULL) - 1 + 1  # no throughput step for the video model


def test_the_dry_run_is_the_same_flow_on_a_cpu_with_the_tiny_presets():
    steps = _steps("--dry-run")
    assert "matmul '/nowhere' cpu" in steps["matmul"]
    for model in TINY:
        name = model.split(":")[0]
        assert "--device cpu" in steps[f"validate-{name}-eager"] and "--budgets 64" in steps[
            f"validate-{name}-eager"]
        assert "--prefill captured --capture compile-eager" in steps[f"validate-{name}-captured"]
        assert f"drop-{name}" not in steps  # a tiny model's cache is kept
        if name.startswith("videoglamm"):  # a video model: no image throughput step
            assert f"throughput-{name}" not in steps
            continue
        assert "--device cpu" in steps[f"throughput-{name}"] and "--batch-sizes 1 2" in steps[
            f"throughput-{name}"]


def test_the_throughput_steps_run_before_the_prefill_tables():
    """The batch-size throughput (the issue a GPU session is lent for first) before the eager/captured
    tables."""
    names = list(_steps())
    first_validate = min(i for i, n in enumerate(names) if n.startswith("validate-"))
    assert max(i for i, n in enumerate(names) if n.startswith("throughput-")) < first_validate
    assert names.index("validate-glamm-7b-random-eager") < names.index("validate-unipixel-3b-random-eager")


@pytest.mark.odd_case("deadline", "no time left for a step", "benchmarks/gpu_check.sh",
                      "the step is skipped and logged, the archive still written (PACK), exit 1")
def test_a_step_past_the_deadline_is_skipped_and_the_archive_still_written(tmp_path):
    out, pack = tmp_path / "gc", tmp_path / "back" / "gc.tar.gz"
    pack.parent.mkdir()
    env = {**os.environ, "PYTHON": "false", "DEADLINE_S": "0", "PACK": str(pack)}
    done = subprocess.run(["bash", str(SCRIPT), "--dry-run", "--out", str(out)], capture_output=True,
                          text=True, env=env, timeout=60)
    assert done.returncode == 1
    log = (out / "steps.log").read_text()
    assert log.count(" skipped: ") == len(_steps("--dry-run")) and "DEADLINE_S=0" in log
    assert pack.is_file() and not (tmp_path / "gc.tar.gz").exists()


def test_the_check_names_the_card_or_the_cpu_it_ran_on():
    """A dry run names the CPU (model, cores, flags) where a GPU run names its card: in env.txt and
    summary.md."""
    assert card("cpu").startswith("CPU: ") and " cores (" in card("cpu")
    assert "\ncpu: " in env() and "\ndevice: " in env()


@pytest.mark.odd_case("bad option", "an unknown argument", "benchmarks/gpu_check.sh",
                      "one line naming it (exit 2)")
def test_an_unknown_argument_is_refused():
    done = subprocess.run(["bash", str(SCRIPT), "--fast"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "unknown argument --fast" in done.stderr


def test_the_summary_judges_the_captured_targets(tmp_path):
    """GLaMM within 2x of its limit; LiteLVLM@192 over none at least 2.0x; eager over captured per row."""
    def run(name: str, none_ms: float, lite_ms: float):
        folder = tmp_path / "validate" / name
        folder.mkdir(parents=True)
        pd.DataFrame([{"method": "none", "budget": 576, "seq_len": 706, "paper_prefill_ms": none_ms,
                       "arithmetic_limit_ms": 9.0, "over_limit": none_ms / 9.0},
                      {"method": "litelvlm", "budget": 192, "seq_len": 322, "paper_prefill_ms": lite_ms,
                       "arithmetic_limit_ms": 4.1, "over_limit": lite_ms / 4.1}]).to_csv(
                           folder / "validate.csv")

    run("glamm-7b-random-eager", 45.0, 44.0)
    run("glamm-7b-random-captured", 15.0, 7.0)
    run("sa2va-qwen2_5-vl-3b-random-captured", 12.0, 10.0)
    (tmp_path / "matmul.json").write_text('{"tflops": 790.0, "dtype": "bfloat16", "name": "H200", "gemm": '
                                          '8192, "device": "cuda"}')
    text = summary(tmp_path)
    assert "790 TFLOP/s (bfloat16, H200" in text and "Ran on: H200 (`cuda`)" in text
    assert "- GLaMM unpruned prefill within 2x of its arithmetic limit: 1.67x **MET**" in text
    assert "glamm-7b-random: LiteLVLM@192 over none (captured, decoder-layer loop) 2.14x" in text
    assert "sa2va-qwen2_5-vl-3b-random: LiteLVLM@192 over none (captured, decoder-layer loop) 1.20x" in text
    assert text.count("**MISSED**") == 1
    rows = pd.read_csv(tmp_path / "summary.csv")
    got = rows[(rows["model"] == "glamm-7b-random") & (rows["prefill"] == "captured")
               & (rows["method"] == "none")]
    assert float(got["captured_vs_eager"].iloc[0]) == pytest.approx(3.0)
    # the limit's FLOPs beside the time
    assert float(got["tflop"].iloc[0]) == pytest.approx(9.0 * 790.0 / 1e3)


@pytest.mark.slow
def test_the_dry_run_runs_end_to_end(tmp_path, shared_data):
    """The whole flow on a CPU (tiny random presets): every step passes, the folder is packed after each
    step."""
    out = tmp_path / "gc"
    env = {**os.environ, "PYTHON": sys.executable, "LITELVLM_SHARED_DATA": str(shared_data),
           "STEP_LIMIT_S": "600", "DEADLINE_S": "3600"}
    done = subprocess.run(["bash", str(SCRIPT), "--dry-run", "--out", str(out)], capture_output=True,
                          text=True, env=env, timeout=1800)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    log = (out / "steps.log").read_text()
    images = [m for m in TINY if not m.startswith("videoglamm")]
    assert log.count(" rc=0 ") == 2 + 2 * len(TINY) + len(images) + 1
    assert all((out / "throughput" / m.split(":")[0] / "throughput.csv").is_file() for m in images)
    assert (out / "summary.md").is_file() and (tmp_path / "gc.tar.gz").is_file()
    rows = pd.read_csv(out / "summary.csv")
    assert set(rows["prefill"]) == {"eager", "captured"} and rows["over_limit"].notna().all()
    assert {m.split(":")[0] for m in TINY} <= set(rows["model"])
    assert "Ran on: CPU: " in (out / "summary.md").read_text() and "cpu: " in (out / "env.txt").read_text()
