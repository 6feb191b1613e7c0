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

FULL = ("glamm-7b-random", "sa2va-qwen2_5-vl-3b-random", "unipixel-3b-random", "videoglamm-random")
TINY = ("tiny-random:0", "unipixel-tiny-random:0", "sa2va-tiny-random:0", "videoglamm-tiny-random:0")


def _steps(*args: str) -> dict[str, str]:
    done = subprocess.run(["bash", str(SCRIPT), "--print-steps", "--out", "/nowhere", *args],
                          capture_output=True, text=True, check=True, timeout=60)
    return dict(line.split(": ", 1) for line in done.stdout.splitlines())


def _runs(model: str) -> list[str]:
    """(attention, prefill) runs of a model: the official eager prefill for the first model too."""
    return (["eager-eager"] if model == FULL[0] else []) + ["eager-captured", "sdpa-captured"]


def test_the_check_runs_every_attention_and_prefill_for_every_model_beside_the_rates():
    steps = _steps()
    assert list(steps)[:3] == ["env", "rates", "gpu-tests"] and list(steps)[-1] == "summary"
    assert "matmul '/nowhere' cuda" in steps["rates"]
    assert "-m gpu" in steps["gpu-tests"]
    assert "tests/litelvlm/llm/test_compiled_prefill.py" in steps["gpu-tests"]
    for model in FULL:
        for run in _runs(model):
            attn, prefill = run.split("-")
            cmd = steps[f"validate-{model}-{run}"]
            assert f"--model {model} " in cmd and f"--prefill {prefill} " in cmd and "--device cuda" in cmd
            assert f"--attn {attn} " in cmd and "--capture" not in cmd   # the default capture: fused on cuda
            budgets = "576 196 64" if model.startswith("videoglamm") else "576 192 64"
            assert (f"--budgets {budgets} " in cmd and "--methods litelvlm fastv" in cmd
                    and "--repeats 3" in cmd)
            assert ("--matmul-tflops $(cat '/nowhere/rate.txt'" in cmd
                    and f"--out '/nowhere/validate/{model}-{run}'" in cmd)
    assert "--tokenizer" in steps["validate-glamm-7b-random-eager-eager"]
    # a video model: the synthetic clip, with pruning that shortens the prompt
    for run in _runs("videoglamm-random"):
        assert "--refer-dir" not in steps[f"validate-videoglamm-random-{run}"]
        assert "--arrangement pool-min" in steps[f"validate-videoglamm-random-{run}"]
    cmd = steps["fused-prefill"]
    assert "bench_fused_prefill.py' --device cuda" in cmd and "--out '/nowhere/fused_prefill'" in cmd
    cmd = steps["throughput-glamm-7b-random"]
    assert "bench_throughput.py' --models glamm-7b-random " in cmd and "--device cuda" in cmd
    assert "--methods none litelvlm fastv" in cmd and "--batch-sizes 1 8 32 --budgets 192 64" in cmd
    # each model's cached random checkpoint dropped after its last step (the disk holds about two)
    names = list(steps)
    for model in FULL:
        family = model.split("-")[0]
        assert f"random-models/{family}-\"*-fast" in steps[f"drop-{model}"]
        assert names.index(f"drop-{model}") == names.index(f"validate-{model}-sdpa-captured") + 1
    assert len(steps) == 3 + sum(len(_runs(m)) + 1 for m in FULL) + 3


def test_the_dry_run_is_the_same_flow_on_a_cpu_with_the_tiny_presets():
    steps = _steps("--dry-run")
    assert "matmul '/nowhere' cpu" in steps["rates"] and "-n 1" in steps["gpu-tests"]
    for model in TINY:
        name = model.split(":")[0]
        cmd = steps[f"validate-{name}-eager-captured"]
        assert "--device cpu" in cmd and "--budgets 64" in cmd and "--capture fused-eager" in cmd
        assert f"drop-{name}" not in steps  # a tiny model's cache is kept
    assert "--prefill eager" in steps["validate-tiny-random-eager-eager"]
    assert "--dry-run" in steps["fused-prefill"] and "--batch-sizes 1 2" in steps["throughput-tiny-random"]


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


def test_the_summary_judges_every_target(tmp_path):
    """Per (model, attention, prefill): the speed-ups over none beside the roofline's own, the ratio to the
    roofline, the stages' end-to-end ratio; each target MET, MISSED or not measured."""
    def run(name: str, none_ms: float, lite_ms: float, roof=(9.0, 4.5), e2e=None, budget=192):
        folder = tmp_path / "validate" / name
        folder.mkdir(parents=True)
        rows = [{"method": "none", "budget": 576, "seq_len": 713, "paper_prefill_ms": none_ms,
                 "roofline_ms": roof[0], "over_roofline": none_ms / roof[0], "roofline_speedup": 1.0},
                {"method": "litelvlm", "budget": budget, "seq_len": 329, "paper_prefill_ms": lite_ms,
                 "roofline_ms": roof[1], "over_roofline": lite_ms / roof[1],
                 "roofline_speedup": roof[0] / roof[1]}]
        pd.DataFrame(rows).to_csv(folder / "validate.csv")
        (folder / "config.json").write_text('{"llm_attn_implementation": "sdpa"}')
        if e2e:
            pd.DataFrame([{"method": "none", "budget": 576, "stage": "total", "ms": e2e[0]},
                          {"method": "litelvlm", "budget": budget, "stage": "total", "ms": e2e[1]}]).to_csv(
                              folder / "stages.csv")

    run("glamm-7b-random-eager-eager", 45.0, 44.0)
    run("glamm-7b-random-eager-captured", 15.0, 7.0, e2e=(40.0, 28.0))
    run("glamm-7b-random-sdpa-captured", 12.0, 6.0)
    run("sa2va-qwen2_5-vl-3b-random-sdpa-captured", 12.0, 10.0)
    (tmp_path / "matmul.json").write_text('{"tflops": 790.0, "dtype": "bfloat16", "name": "H200", "gemm": '
                                          '8192, "device": "cuda", "copy_gbps": 4300.0}')
    text = summary(tmp_path)
    assert "790 TFLOP/s (bfloat16, H200" in text and "Ran on: H200 (`cuda`)" in text and "4300 GB/s" in text
    assert "- GLaMM-7B none, captured, eager: within 2x of its roofline: 1.67x **MET**" in text
    assert "- GLaMM-7B none, captured, sdpa: within 1.5x of its roofline: 1.33x **MET**" in text
    assert "LiteLVLM@192 over none, captured, eager: >= 2x (paper 2.2x): 2.14x **MET**" in text
    assert "glamm LiteLVLM@192 over none, captured, sdpa: >= 90% of the roofline's 2.00x: 1.00 of it" in text
    assert "sa2va LiteLVLM@192 over none, captured, sdpa: >= 90% of the roofline's 2.00x: 0.60" in text
    assert ("end to end (stages' total) LiteLVLM@192 over none, batch 1: >= 1.3x (paper: 22% faster): 1.43x"
            in text)
    assert "unipixel LiteLVLM@192 over none, captured, eager" in text and "not measured" in text
    assert text.count("**MISSED**") == 1
    rows = pd.read_csv(tmp_path / "summary.csv")
    got = rows[(rows["model"] == "glamm-7b-random") & (rows["attn"] == "sdpa")
               & (rows["method"] == "litelvlm")]
    assert float(got["of_roofline_speedup"].iloc[0]) == pytest.approx(1.0)
    assert got["llm_attn"].iloc[0] == "sdpa"


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
    assert log.count(" rc=0 ") == 3 + 2 * len(TINY) + 1 + 3
    assert (out / "throughput" / "tiny-random" / "throughput.csv").is_file() and images
    assert (out / "summary.md").is_file() and (tmp_path / "gc.tar.gz").is_file()
    assert (out / "fused_prefill" / "fused_prefill.csv").is_file() and (out / "gbps.txt").is_file()
    rows = pd.read_csv(out / "summary.csv")
    assert set(rows["prefill"]) == {"eager", "captured"} and set(rows["attn"]) == {"eager", "sdpa"}
    assert rows["over_roofline"].notna().all()
    assert {m.split(":")[0] for m in TINY} <= set(rows["model"])
    assert "Ran on: CPU: " in (out / "summary.md").read_text() and "cpu: " in (out / "env.txt").read_text()
