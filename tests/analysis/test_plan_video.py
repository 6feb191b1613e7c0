"""``litelvlm plan``'s video tables (``analysis.plan.video``): every video layout commanded with its
``--dataset`` and ``--split``, the video runs calibrated (seconds per frame of an expression, EXTRAPOLATED and
labelled with n), on tiny layouts written here: by default on a fake video path (eval-video's own per-video
work on a runner that returns the ground truth), and (slow) on the tiny random VideoGLaMM, whose printed MeViS
and Refer-YouTube-VOS commands then run under ``torch.distributed.run`` and resume."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import zipfile
from pathlib import Path

import pandas as pd
import pytest

from litelvlm.cli import main
from tests.analysis.video.test_protocols import ShiftEval, write_mevis, write_ytvos

ROOT = Path(__file__).resolve().parents[2]


def _layouts(data: Path, frames: int = 1) -> None:
    from litelvlm.video.synthetic import write_synthetic_videos

    write_mevis(data / "mevis", exps=1, frames=frames)   # found first: the calibration's split
    write_synthetic_videos(data / "ref-davis", videos=1, frames=2, size=(33, 35))
    write_ytvos(data / "ytvos")


def _plan(tmp_path: Path, data: Path, *extra: str) -> dict:
    assert main(
        ["plan", "--data-dirs", str(data), "--out", str(tmp_path / "plan"), "--tree", str(tmp_path / "tree"),
                 "--models", "videoglamm-tiny-random:0", "--methods", "litelvlm", "--video-budgets", "81",
                 *extra]) == 0
    return json.loads((tmp_path / "plan" / "plan.json").read_text())


def test_the_video_runs_are_calibrated_and_extrapolated_per_frame(tmp_path, monkeypatch):
    import analysis.plan.video as video
    import analysis.video.compute as compute
    import analysis.video.options as options

    fake = ShiftEval()
    for module in (options, compute, video):
        monkeypatch.setattr(module, "video_eval", lambda model: fake)
    data = tmp_path / "data"
    _layouts(data)
    plan = _plan(tmp_path, data, "--calibrate", "1", "--gpus", "2")
    cal = plan["calibration"]
    per = cal["seconds_per_frame"]["videoglamm-tiny-random:0"]
    assert cal["video_n"] == 1 and set(per) == {"none@all", "litelvlm@81"} and all(
        v > 0 for v in per.values())
    frames = {"mevis": 3, "ref-davis17": None, "ref-youtube-vos": 12}   # 1 expression x 1 + 2 frames; 4 x 3
    for r in plan["runs"]:
        assert r["estimate"] == "EXTRAPOLATED from n=1 video(s) (2 expression-frames) of mevis valid_u"
        assert r["seconds"] == pytest.approx(per[f"{r['method']}@{r['budget']}"] * r["frames"] / 2)
        assert frames[r["dataset"]] in (None, r["frames"])
    assert sorted(c["dataset"] for c in plan["commands"]) == ["mevis", "ref-davis17", "ref-youtube-vos"]
    for c in plan["commands"]:
        assert c["seconds"] == pytest.approx(sum(r["seconds"] for r in plan["runs"] if r["out"] == c["out"]))
    md = (tmp_path / "plan" / "plan.md").read_text()
    assert "EXTRAPOLATED from a calibration of n=1 video(s) (per frame of an expression)" in md
    # eval-video's own work: the warm-up video with both runs, then the timed one alone per run and together
    assert [(v, m, b.column) for v, m, b in fake.seen["expression"]] == [
        ("vid0", "none", 576), ("vid0", "litelvlm", 81), ("vid1", "none", 576), ("vid1", "litelvlm", 81),
        ("vid1", "none", 576), ("vid1", "litelvlm", 81)]


# the calibration and two eval-video commands under torch.distributed.run, resumed (about 60 CPU-s)
@pytest.mark.slow
def test_the_printed_video_commands_run_and_resume(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1",
           "LITELVLM_CACHE": str(tmp_path / "cache"), "MPLBACKEND": "Agg"}
    os.environ["LITELVLM_CACHE"] = env["LITELVLM_CACHE"]
    data = tmp_path / "data"
    _layouts(data, frames=2)
    plan = _plan(tmp_path, data, "--calibrate", "1")
    assert all(r["seconds"] > 0 and r["estimate"].startswith("EXTRAPOLATED from n=1 video(s)")
               for r in plan["runs"])
    for dataset, table in (("mevis", "summary.csv"), ("ref-youtube-vos", "submission.csv")):
        (cmd,) = [c for c in plan["commands"] if c["dataset"] == dataset]
        argv = shlex.split(cmd["command"])
        p = subprocess.run([sys.executable, *argv[1:]], env=env, cwd=ROOT, capture_output=True, text=True,
                           timeout=600)
        assert p.returncode == 0, p.stderr[-3000:]
        out = Path(cmd["out"])
        rows = pd.read_csv(out / table)
        assert list(zip(rows.method, rows.budget, strict=True)) == [("none", 576), ("litelvlm", 81)]
        with zipfile.ZipFile(out / "predictions" / "litelvlm@81.zip") as z:
            assert all(n.startswith("Annotations/") and n.endswith(".png") for n in z.namelist())
        assert ("J&F comes from the official evaluation server" in p.stdout) == (dataset == "ref-youtube-vos")
        parts = sorted(p.name for p in (out / "parts").iterdir())
        first = {n: (out / n).read_bytes() for n in (table, "predictions/litelvlm@81.zip")}
        again = subprocess.run([sys.executable, *argv[1:]], env=env, cwd=ROOT, capture_output=True, text=True,
                               timeout=600)   # resumes: nothing left to evaluate, the same tables and zips
        assert again.returncode == 0, again.stderr[-3000:]
        assert sorted(p.name for p in (out / "parts").iterdir()) == parts
        assert {n: (out / n).read_bytes() for n in first} == first
