"""benchmarks/gpu_check.sh: its steps, their order and the files and options they name (light), what a step
that runs no test or a deadline does, and its dry run on a CPU (slow)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "benchmarks" / "gpu_check.sh"
sys.path.insert(0, str(ROOT / "benchmarks"))
from gpu_check import card, env  # noqa: E402

FULL = ("glamm-7b-random", "sa2va-qwen2_5-vl-3b-random", "unipixel-3b-random", "videoglamm-random")
TINY = ("tiny-random:0", "sa2va-tiny-random:0", "unipixel-tiny-random:0", "videoglamm-tiny-random:0")
#: each family's official attention kernel: its run comes first
OFFICIAL = {"glamm": "eager", "tiny": "eager", "sa2va": "sdpa", "unipixel": "sdpa", "videoglamm": "eager"}


def print_steps(script: Path = SCRIPT, *args: str, cwd: Path | None = None,
                env: dict | None = None) -> dict[str, str]:
    """{step name: its command} as ``gpu_check.sh --print-steps --out /nowhere ARGS`` prints them."""
    done = subprocess.run(["bash", str(script), "--print-steps", "--out", "/nowhere", *args],
                          capture_output=True, text=True, check=True, timeout=60, cwd=cwd, env=env)
    return dict(line.split(": ", 1) for line in done.stdout.splitlines())


def _runs(model: str) -> list[str]:
    """A model's validate runs (attention-prefill[-encoders]), in the check's order."""
    first = OFFICIAL[model.split("-")[0]]
    other = f"{'sdpa' if first == 'eager' else 'eager'}-captured"
    # the first model: the default with the encoders fused, then the official all-eager path
    firsts = ["eager-captured-fused", "eager-eager-eager"] if model in (FULL[0], TINY[0]) else []
    return [f"{first}-captured", *firsts, other]


def _order(models: tuple[str, ...], drops: bool) -> list[str]:
    names = ["env", "rates"]
    for model in models:
        name = model.split(":")[0]
        names += [f"validate-{name}-{run}" for run in _runs(model)]
        if model == models[0]:
            # where one warmed call spends its time; then the exactness proofs on CUDA (tiny models), which a
            # short lease must not lose to the later timings
            names += [f"profile-{name}", "gpu-tests"]
        if drops and model != models[0]:
            names.append(f"drop-{name}")
    first = models[0].split(":")[0]
    # the throughput per batch size, then what the loader's overlap of each image's pixels buys
    names += [f"throughput-{first}", f"overlap-{first}"]
    return names + ([f"drop-{first}"] if drops else []) + ["fused-prefill", "tables", "summary"]


def gpu_test_files() -> set[str]:
    """The test files that hold a ``gpu``-marked test."""
    return {str(p.relative_to(ROOT)) for p in (ROOT / "tests").rglob("test_*.py")
            if "__pycache__" not in p.parts and "@pytest.mark.gpu" in p.read_text()}


def test_the_check_runs_the_most_important_steps_first():
    """env, rates, GLaMM-7B and its profile, the gpu tests, Sa2VA, UniPixel, VideoGLaMM, throughput, the
    fused-prefill bench last (the deadline may skip it); each model's official attention first; a model's
    cached checkpoint goes after its last step."""
    assert list(print_steps()) == _order(FULL, drops=True)
    assert list(print_steps(SCRIPT, "--dry-run")) == _order(TINY, drops=False)


def test_the_check_writes_the_tables_of_its_validate_runs():
    """The time-by-stage tables (each run's speed-ups beside Amdahl's bound) and the efficiency tables of
    every validate run, read from the check's own folder (a CPU step: seconds)."""
    for args in ((), ("--dry-run",)):
        cmd = print_steps(SCRIPT, *args)["tables"]
        assert "litelvlm.cli tables --results '/nowhere/validate' --out '/nowhere/tables'" in cmd, cmd


def test_the_check_runs_every_attention_and_prefill_for_every_model():
    steps = print_steps()
    assert "matmul '/nowhere' cuda" in steps["rates"]
    for model in FULL:
        for run in _runs(model):
            attn, prefill = run.split("-")[:2]
            cmd = steps[f"validate-{model}-{run}"]
            assert f"--model {model} " in cmd and f"--prefill {prefill} " in cmd and "--device cuda" in cmd
            assert f"--attn {attn} " in cmd and "--capture" not in cmd   # the default capture: fused on cuda
            # the targets' budget (none runs at N); the headline run adds FastV and 64
            # VideoGLaMM: 196 a frame (the paper's) and 64, where pool-min's prompt shortens (196 keeps 144)
            budget = "196 64" if model.startswith("videoglamm") else "192"
            headline = (model, run) == (FULL[0], "eager-captured")
            assert f"--budgets {budget}{' 64' if headline else ''} " in cmd and "--repeats 3" in cmd
            # the tower methods in each image model's first run: ViTCoP and IPCV beside the headline's FastV,
            # IPCV on the Qwen-tower families (VideoGLaMM's runs stay LiteLVLM's alone)
            first = run == _runs(model)[0] and not model.startswith("videoglamm")
            methods = ("litelvlm fastv vitcop ipcv" if headline else "litelvlm ipcv" if first else "litelvlm")
            assert f"--methods {methods} " in cmd
            assert ("--matmul-tflops $(cat '/nowhere/rate.txt'" in cmd
                    and f"--out '/nowhere/validate/{model}-{run}'" in cmd)
            # the default encoders (auto) but in GLaMM-7B's all-official run and its fused-encoders run (this
            # project's --encoders fused at the official attention, the captured prefill, LiteLVLM@192)
            assert ("--encoders eager --prefill eager" in cmd) == (run == "eager-eager-eager")
            assert ("--encoders fused --prefill captured" in cmd) == (run == "eager-captured-fused")
            assert ("--encoders" in cmd) == (run in ("eager-eager-eager", "eager-captured-fused"))
    assert "--tokenizer" in steps["validate-glamm-7b-random-eager-eager-eager"]
    for run in _runs("videoglamm-random"):   # a video model: the synthetic clip, pruning shortens the prompt
        assert "--refer-dir" not in steps[f"validate-videoglamm-random-{run}"]
        assert "--arrangement pool-min" in steps[f"validate-videoglamm-random-{run}"]
    cmd = steps["fused-prefill"]
    assert "bench_fused_prefill.py' --device cuda" in cmd and "--out '/nowhere/fused_prefill'" in cmd
    cmd = steps["throughput-glamm-7b-random"]
    assert "bench_throughput.py' --models glamm-7b-random " in cmd and "--device cuda" in cmd
    assert "--batch-sizes 1 8 32 --budgets 192 " in cmd and "--methods none litelvlm " in cmd
    cmd = steps["profile-glamm-7b-random"]
    assert "profile_call.py' --model glamm-7b-random --tokenizer" in cmd and "--out '/nowhere/profile'" in cmd
    for model in FULL:
        assert f"random-models/{model.split('-')[0]}-\"*-fast" in steps[f"drop-{model}"]


def test_the_gpu_tests_step_names_every_test_file_with_a_gpu_test():
    """The moved quantization tests included: the step's files are those holding a gpu-marked test."""
    for args in ((), ("--dry-run",)):
        cmd = print_steps(SCRIPT, *args)["gpu-tests"]
        assert "-m gpu" in cmd and "-p no:cacheprovider" in cmd
        named = set(re.findall(r"tests/\S+\.py", cmd))
        assert named == gpu_test_files() and "tests/litelvlm/models/test_quantize.py" in named
        assert all((ROOT / f).is_file() for f in named)


def test_the_dry_run_is_the_same_flow_on_a_cpu_with_the_tiny_presets():
    steps = print_steps(SCRIPT, "--dry-run")
    assert "matmul '/nowhere' cpu" in steps["rates"] and "-n 1" in steps["gpu-tests"]
    for model in TINY:
        name = model.split(":")[0]
        cmd = steps[f"validate-{name}-eager-captured"]
        first = 196 if name.startswith("videoglamm") else 192   # the targets' budget (the headline adds 64)
        first = 64 if name.startswith("sa2va") else first   # the tiny Sa2VA's image has 117 visual tokens
        assert "--device cpu" in cmd and f"--budgets {first}{' 64' if name == 'tiny-random' else ''} " in cmd
        assert "--capture fused-eager --encoders compile-eager" in cmd   # traced, nothing generated on a CPU
    assert "--dry-run" in steps["profile-tiny-random"]
    assert "--encoders eager --prefill eager" in steps["validate-tiny-random-eager-eager-eager"]
    # fused encoders on a CPU: dynamo's eager backend and no graph, the run's own encoders (not the default's)
    cmd = steps["validate-tiny-random-eager-captured-fused"]
    assert "--methods litelvlm --budgets 192 " in cmd and "--encoders fused-eager --prefill captured" in cmd
    assert "compile-eager" not in cmd and cmd.count("--encoders") == 1
    assert "--dry-run" in steps["fused-prefill"] and "--batch-sizes 1 2" in steps["throughput-tiny-random"]
    assert "bench_prepare_overlap.py' --dry-run" in steps["overlap-tiny-random"]
    full = print_steps()["overlap-glamm-7b-random"]
    assert "--model glamm-7b-random --tokenizer" in full and "--device cuda --images 16" in full
    assert "--out '/nowhere/overlap/glamm-7b-random'" in full


def _options(path: Path) -> set[str]:
    """The options a benchmark script's argparse declares (read from its source)."""
    return set(re.findall(r"add_argument\(\s*\"(--[a-z0-9-]+)\"", path.read_text()))


def _validate_options() -> set[str]:
    from litelvlm.cli import build_parser

    sub = next(a for a in build_parser("validate")._actions if a.dest == "command")
    return {s for a in sub.choices["validate"]._actions for s in a.option_strings}


def check_named(steps: dict[str, str], root: Path, skip: tuple[str, ...] = ("/nowhere",)) -> None:
    """Every quoted path a step names (but those under ``skip``) exists, and every option it passes to
    validate or a benchmark script is one that command declares."""
    known = {"litelvlm.cli validate ": _validate_options(),
             "bench_throughput.py": _options(root / "benchmarks" / "bench_throughput.py"),
             "bench_fused_prefill.py": _options(root / "benchmarks" / "bench_fused_prefill.py")}
    # validate gains --encoders (docs/validate.md, "The GPU check"); once it has it, it is checked as others
    pending = {"--encoders"} - known["litelvlm.cli validate "]
    for name, cmd in steps.items():
        for path in re.findall(r"'(/[^']*)'", cmd):
            assert path.startswith(skip) or Path(path).exists(), (name, path)
        for program, opts in known.items():
            head, _, tail = cmd.partition(program)
            if head and tail:
                given = set(re.findall(r"(?<![\w-])(--[a-z0-9-]+)", tail.split(" > ")[0]))
                assert given - opts - pending == set(), (name, given - opts)


def test_every_step_names_files_and_options_that_exist():
    data = os.environ.get("LITELVLM_SHARED_DATA", str(ROOT.parent / "shared" / "data"))
    # a clone without ../shared/data: the script falls back to shared/data in the folder
    skip = ("/nowhere",) if Path(data).is_dir() else ("/nowhere", data, str(ROOT / "shared" / "data"))
    for args in ((), ("--dry-run",)):
        check_named(print_steps(SCRIPT, *args), ROOT, skip)


@pytest.mark.odd_case("fault", "a step runs no test (pytest exit 5, 'no tests ran')",
                      "benchmarks/gpu_check.sh",
                      "the step fails, named in steps.log ('gpu-tests ran no test'), exit 1")
def test_a_step_that_runs_no_test_fails_and_is_named(tmp_path):
    fake = tmp_path / "python"
    fake.write_text("#!/bin/sh\necho 'no tests ran in 0.01s'\nexit 5\n")
    fake.chmod(0o755)
    out = tmp_path / "gc"
    env = {**os.environ, "PYTHON": str(fake), "ONLY": "^gpu-tests$"}
    done = subprocess.run(["bash", str(SCRIPT), "--dry-run", "--out", str(out)], capture_output=True,
                          text=True, env=env, timeout=60)
    assert done.returncode == 1
    assert "gpu-tests ran no test" in (out / "steps.log").read_text()


@pytest.mark.odd_case("deadline", "no time left for a step", "benchmarks/gpu_check.sh",
                      "the step is skipped and logged, the summary and the archive still written (PACK), "
                      "exit 1")
def test_a_step_past_the_deadline_is_skipped_and_the_archive_still_written(tmp_path):
    out, pack = tmp_path / "gc", tmp_path / "back" / "gc.tar.gz"
    pack.parent.mkdir()
    env = {**os.environ, "PYTHON": "false", "DEADLINE_S": "0", "PACK": str(pack)}
    done = subprocess.run(["bash", str(SCRIPT), "--dry-run", "--out", str(out)], capture_output=True,
                          text=True, env=env, timeout=60)
    assert done.returncode == 1
    log = (out / "steps.log").read_text()
    assert log.count(" skipped: ") == len(print_steps(SCRIPT, "--dry-run")) - 1 and "DEADLINE_S=0" in log
    assert re.search(r"^start \d+", log, re.M) and re.search(r"^end \d+", log, re.M)
    assert "summary rc=1" in log   # the summary runs whatever the deadline (here a Python that fails)
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


@pytest.mark.slow
def test_the_dry_run_runs_end_to_end(tmp_path, shared_data):
    """The whole flow on a CPU (tiny random presets): every step passes, the folder is packed after each
    step, the summary judges every target."""
    out = tmp_path / "gc"
    env = {**os.environ, "PYTHON": sys.executable, "LITELVLM_SHARED_DATA": str(shared_data),
           "STEP_LIMIT_S": "600", "DEADLINE_S": "3600"}
    done = subprocess.run(["bash", str(SCRIPT), "--dry-run", "--out", str(out)], capture_output=True,
                          text=True, env=env, timeout=1800)
    log = (out / "steps.log").read_text()
    assert done.returncode == 0, log + done.stderr[-2000:]
    assert log.count(" rc=0 ") == len(_order(TINY, drops=False))
    assert (out / "throughput" / "tiny-random" / "throughput.csv").is_file()
    assert (out / "summary.md").is_file() and (tmp_path / "gc.tar.gz").is_file()
    assert (out / "fused_prefill" / "fused_prefill.csv").is_file() and (out / "gbps.txt").is_file()
    rows = pd.read_csv(out / "runs.csv")
    assert set(rows["prefill"]) == {"eager", "captured"} and set(rows["attn"]) == {"eager", "sdpa"}
    assert rows["over_roofline"].notna().all()
    assert {m.split(":")[0] for m in TINY} <= set(rows["model"])
    targets = pd.read_csv(out / "summary.csv")
    assert {f"T{i}" for i in range(1, 7)} <= set(targets["target"])
    assert set(targets["verdict"]) <= {"MET", "MISSED", "NOT MEASURED"}
    assert "Ran on: CPU: " in (out / "summary.md").read_text() and "cpu: " in (out / "env.txt").read_text()
