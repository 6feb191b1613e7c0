"""``benchmarks/gpu_check.sh --prepare`` (benchmarks/gpu_check_prepare.py): one self-contained folder, the
project's code and the data the steps read, under 40 MiB, that runs with no git from any directory."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.benchmarks.test_gpu_check import SCRIPT, check_named, print_steps

LIMIT = 40 * 2**20


def _prepare(*args: str, env: dict | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(SCRIPT), "--prepare", *args], capture_output=True, text=True,
                          timeout=300, cwd=cwd, env={**os.environ, "PYTHON": sys.executable, **(env or {})})


@pytest.fixture(scope="module")
def folder(tmp_path_factory, shared_data) -> Path:
    """A folder prepared without the wheels (``--no-wheels``), from another directory."""
    dest = tmp_path_factory.mktemp("prep") / "gpu"
    done = _prepare("--out", str(dest), "--no-wheels", env={"LITELVLM_SHARED_DATA": str(shared_data)},
                    cwd=tmp_path_factory.mktemp("elsewhere"))
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert "MiB" in done.stdout
    return dest


def _files(dest: Path) -> list[Path]:
    return [p for p in dest.rglob("*") if p.is_file()]


def test_the_folder_holds_the_code_and_the_data_the_steps_read_under_40_mib(folder):
    files = _files(folder)
    assert sum(p.stat().st_size for p in files) < LIMIT
    for path in ("litelvlm/__init__.py", "litelvlm/cli.py", "analysis/commands.py", "benchmarks/gpu_check.sh",
                 "benchmarks/gpu_check.py", "benchmarks/bench_throughput.py", "tests/conftest.py",
                 "tests/litelvlm/models/test_quantize.py", "pyproject.toml", "README.md",
                 "shared/data/coco128_refer/instances.json", "shared/data/coco128_refer/refs(unc).p",
                 "shared/data/glamm_refseg_tokenizer/tokenizer.model"):
        assert (folder / path).is_file(), path
    tops = {p.relative_to(folder).parts[0] for p in files}
    assert not tops & {"figures", "results", "notebooks", "docs", ".venv", ".git", "CHANGELOG.md"}
    assert not any("__pycache__" in p.parts or p.suffix == ".pyc" for p in files)
    assert not list((folder / "litelvlm" / "toy").glob("weights/*"))
    # the images validate and the throughput bench read (their first images, 32 at most), not the 128
    images = list((folder / "shared" / "data" / "coco128_refer" / "images").glob("*.jpg"))
    assert 1 <= len(images) <= 35


def test_the_folder_runs_from_any_directory_without_git(folder, tmp_path):
    assert not (folder / ".git").exists()
    env = {k: v for k, v in os.environ.items() if k != "LITELVLM_SHARED_DATA"}
    steps = print_steps(folder / "benchmarks" / "gpu_check.sh", cwd=tmp_path, env=env)
    dry = print_steps(folder / "benchmarks" / "gpu_check.sh", "--dry-run", cwd=tmp_path, env=env)
    data = folder / "shared" / "data"
    assert (f"--tokenizer '{data}/glamm_refseg_tokenizer' --refer-dir '{data}/coco128_refer'"
            in steps["validate-glamm-7b-random-eager-captured"])
    assert f"--refer-dir '{data}/coco128_refer'" in dry["validate-tiny-random-eager-captured"]
    assert f"'{folder}/benchmarks/gpu_check.py' matmul" in dry["rates"]
    check_named(steps, folder)
    check_named(dry, folder)


def test_the_copy_finds_the_study_commands_without_an_install(folder, tmp_path):
    """``python -m litelvlm.cli validate`` reaches the studies' commands through the entry points that the
    copy's own dist-info declares (PYTHONPATH alone, no install)."""
    env = {**os.environ, "PYTHONPATH": str(folder)}
    code = ("import importlib.metadata as m, litelvlm; print(litelvlm.__file__); print(*sorted(str(d._path) "
            "for d in m.distributions() if d.metadata['Name'] == 'litelvlm'))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=tmp_path,
                          timeout=60, check=True)
    first, dists = done.stdout.splitlines()
    assert first.startswith(str(folder)) and str(folder / "litelvlm-") in dists
    done = subprocess.run([sys.executable, "-m", "litelvlm.cli", "validate", "--help"], capture_output=True,
                          text=True, env=env, cwd=tmp_path, timeout=120)
    assert done.returncode == 0 and "--refer-dir" in done.stdout


@pytest.mark.odd_case("bad option", "--prepare into a folder it did not write", "benchmarks/gpu_check.sh",
                      "refused in one line, the folder untouched (exit 2)")
def test_a_folder_it_did_not_write_is_refused(tmp_path):
    dest = tmp_path / "mine"
    dest.mkdir()
    (dest / "notes.txt").write_text("keep me")
    done = _prepare(str(dest), "--no-wheels")
    assert done.returncode == 2 and "not a folder --prepare wrote" in done.stderr
    assert [p.name for p in dest.iterdir()] == ["notes.txt"]


@pytest.mark.odd_case("offline", "--prepare where pip cannot download", "benchmarks/gpu_check.sh",
                      "one line saying so (exit 2), no folder written")
def test_no_wheels_to_download_is_one_line_and_exit_2(tmp_path):
    empty = tmp_path / "links"
    empty.mkdir()
    dest = tmp_path / "gpu"
    done = _prepare("--out", str(dest), env={"PIP_CONFIG_FILE": os.devnull, "PIP_NO_INDEX": "1",
                                             "PIP_FIND_LINKS": str(empty)})
    assert done.returncode == 2
    assert len(done.stderr.strip().splitlines()) == 1 and "pip could not download" in done.stderr
    assert not dest.exists()
