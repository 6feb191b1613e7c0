"""``litelvlm plan``: the paper's tables as runs on the data found, the estimate from a calibration, the
printed ``torch.distributed.run`` commands, and (slow) the commands run and drawn by ``figures`` end to
end."""

from __future__ import annotations

import json
import os
import pickle
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from analysis.plan.options import PAPER_METHODS
from litelvlm.cli import main
from litelvlm.data.refer import load_refs

ROOT = Path(__file__).resolve().parents[2]
MODELS = "tiny-random:0,unipixel-tiny-random:5"


def _plan(tmp_path, data, *extra) -> dict:
    assert main(
        ["plan", "--data-dirs", str(data), "--out", str(tmp_path / "plan"), "--tree", str(tmp_path / "tree"),
                 *extra]) == 0
    return json.loads((tmp_path / "plan" / "plan.json").read_text())


def test_the_paper_tables_of_the_sample_as_runs_and_commands(shared_data, tmp_path, capsys):
    """The sample's REFER layout is read as RefCOCO (val, testA, testB); each (model, split) is the paper's 28
    runs (9 methods at 3 budgets and the unpruned model once) in one command; every absent layout has its
    note."""
    plan = _plan(tmp_path, shared_data, "--models", MODELS, "--calibrate", "0", "--gpus", "4")
    out = capsys.readouterr().out
    runs, commands = plan["runs"], plan["commands"]
    refs = load_refs(shared_data / "coco128_refer" / "refs(unc).p")
    for model, family in (("tiny-random:0", "glamm"), ("unipixel-tiny-random:5", "unipixel")):
        for split in ("val", "testA", "testB"):
            table = [r for r in runs if r["model"] == model and r["split"] == split]
            assert len(table) == 28
            assert {(r["method"], r["budget"]) for r in table} == {("none", "all")} | {
                (m, b) for m in PAPER_METHODS for b in ("192", "128", "64")}
            assert {r["units"] for r in table} == {len({x["image_id"] for x in refs if x["split"] == split})}
            assert {r["expressions"] for r in table} == {
                sum(len(x["sentences"]) for x in refs if x["split"] == split)}
            assert {r["dataset"] for r in table} == {"refcoco"} and "seconds" not in table[0]
            (cmd,) = [c for c in commands if c["model"] == model and c["split"] == split]
            argv = shlex.split(cmd["command"])
            assert argv[:4] == ["python", "-m", "torch.distributed.run", "--standalone"]
            assert argv[argv.index("--nproc-per-node") + 1] == "4"
            assert argv[argv.index("--out") + 1] == str(tmp_path / "tree" / family / f"refcoco_{split}")
            assert argv[argv.index("--methods") + 1] == ",".join(["none", *PAPER_METHODS])
            assert argv[argv.index("--budgets") + 1] == "192,128,64" and "--limit-images" not in argv
            assert cmd["command"] in out   # printed as written
            _parses(cmd["command"])
    assert len(runs) == 168 and len(commands) == 6
    notes = "\n".join(plan["notes"])
    for absent in ("refcoco+:", "refcocog:", "Ref-DAVIS-17:", "Refer-YouTube-VOS:", "MeViS:"):
        assert absent in notes
    assert "read as refcoco" in notes   # the sample's folder is not named refcoco
    md = (tmp_path / "plan" / "plan.md").read_text()
    assert "no time estimate" in md and f"litelvlm figures --results {tmp_path / 'tree'}" in md


def _refer(folder: Path, split_by: str, splits: tuple[str, ...]) -> None:
    folder.mkdir(parents=True)
    refs = [{"ref_id": i, "image_id": 100 + i // 2, "ann_id": i, "category_id": 1, "split": s,
             "sentences": [{"sent_id": 10 * i + j, "sent": f"thing {j}"} for j in range(i % 3 + 1)]}
            for i, s in enumerate(x for x in splits for _ in range(3))]
    (folder / f"refs({split_by}).p").write_bytes(pickle.dumps(refs, protocol=2))
    (folder / "instances.json").write_text("{}")


def _meta(path: Path, videos: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"videos": {f"v{i}": {"expressions": {"0": {"exp": "a"}, "1": {"exp": "b"}},
                                                    "frames": ["00000"]} for i in range(videos)}}))


def test_every_layout_is_found_by_its_files(tmp_path):
    """RefCOCO+ and RefCOCOg by their folders' names and split schemes; Ref-DAVIS-17, Refer-YouTube-VOS and
    MeViS by their files (Refer-YouTube-VOS valid less the test videos its meta file also lists); each video
    split gets its eval-video command with its --dataset and --split."""
    from analysis.plan.layouts import find_layouts
    from litelvlm.video.synthetic import write_synthetic_videos

    data = tmp_path / "data"
    _refer(data / "refcoco+", "unc", ("val", "testA", "testB"))
    _refer(data / "refcocog", "umd", ("train", "val", "test"))
    write_synthetic_videos(data / "ref-davis", videos=1, frames=2, size=(32, 32))
    _meta(data / "ytvos" / "meta_expressions" / "valid" / "meta_expressions.json", 3)
    _meta(data / "ytvos" / "meta_expressions" / "test" / "meta_expressions.json", 1)
    (data / "ytvos" / "valid" / "JPEGImages").mkdir(parents=True)
    _meta(data / "mevis" / "valid_u" / "meta_expressions.json", 2)
    (data / "mevis" / "valid_u" / "JPEGImages").mkdir(parents=True)
    (data / "mevis" / "valid_u" / "mask_dict.json").write_text("{}")
    splits, notes = find_layouts([str(data)])
    found = {(s.dataset, s.split): (s.units, s.expressions) for s in splits}
    assert found == {("refcoco+", "val"): (2, 6), ("refcoco+", "testA"): (2, 6),
                     ("refcoco+", "testB"): (2, 6), ("refcocog", "val"): (2, 6), ("refcocog", "test"): (2, 6),
                     ("ref-davis17", "valid"): found[("ref-davis17", "valid")],
                     ("ref-youtube-vos", "valid"): (2, 4), ("mevis", "valid_u"): (2, 4)}
    # 2 expressions x 1 frame, twice
    assert {s.dataset: s.frames for s in splits if s.kind == "video"}["mevis"] == 4
    assert [n for n in notes if "not planned" in n] == [n for n in notes if n.startswith("refcoco:")]
    plan = _plan(tmp_path, data, "--models", "videoglamm-tiny-random:0", "--calibrate", "0")
    assert {r["dataset"] for r in plan["runs"]} == {"ref-davis17", "ref-youtube-vos", "mevis"}
    # VideoGLaMM's video path refuses CDPruner (no CLIP patch map onto its tokens): left out, with one note
    assert {(r["method"], r["budget"]) for r in plan["runs"] if r["dataset"]
            == "mevis"} == {("none", "all")} | {
        (m, b) for m in PAPER_METHODS if m != "cdpruner" for b in ("196", "81")}
    assert sum("does not run cdpruner" in n for n in plan["notes"]) == 1
    folders = {"ref-davis17": ("ref-davis", "valid"), "ref-youtube-vos": ("ytvos", "valid"),
               "mevis": ("mevis", "valid_u")}
    assert sorted(c["dataset"] for c in plan["commands"]) == sorted(folders)
    for cmd in plan["commands"]:
        argv = shlex.split(cmd["command"])
        assert argv[argv.index("litelvlm.cli") + 1] == "eval-video"
        folder, split = folders[cmd["dataset"]]
        assert argv[argv.index("--video-dir") + 1] == str((data / folder).resolve())
        assert argv[argv.index("--dataset") + 1] == cmd["dataset"] and argv[argv.index("--split")
                                                                            + 1] == split
        _parses(cmd["command"])


def _parses(command: str) -> None:
    """The subcommand's own parser reads every option the printed command passes it."""
    from litelvlm.cli import build_parser

    argv = shlex.split(command)
    rest = argv[argv.index("litelvlm.cli") + 1:]
    build_parser(only=rest[0]).parse_args(rest)   # an unknown option or value exits (SystemExit)


def test_the_estimate_extrapolates_the_calibration(shared_data, tmp_path, monkeypatch):
    """A run's estimate is its calibrated seconds per image times the split's images over --gpus (or over
    --limit-images where given), labelled EXTRAPOLATED with the calibration's n."""
    from analysis.plan import compute

    per = {("none", "all"): 2.0, ("litelvlm", "64"): 1.0}
    monkeypatch.setattr(compute, "calibrate", lambda a, model, methods, s: (per, 3))
    plan = _plan(tmp_path, shared_data, "--models", "tiny-random:0", "--methods", "litelvlm", "--budgets",
                 "64", "--gpus", "2", "--calibrate", "3")
    for r in plan["runs"]:
        assert r["seconds"] == pytest.approx(per[(r["method"], r["budget"])] * r["units"] / 2)
        assert r["estimate"] == "EXTRAPOLATED from n=3 image(s) of refcoco val"
    assert plan["calibration"]["n"] == 3 and plan["calibration"]["seconds_per_image"]["tiny-random:0"] == {
        "none@all": 2.0, "litelvlm@64": 1.0}
    for c in plan["commands"]:
        assert c["seconds"] == pytest.approx(sum(r["seconds"] for r in plan["runs"] if r["out"] == c["out"]))
    assert "EXTRAPOLATED from a calibration of n=3" in (tmp_path / "plan" / "plan.md").read_text()
    plan = _plan(tmp_path, shared_data, "--models", "tiny-random:0", "--methods", "litelvlm", "--budgets",
                 "64", "--calibrate", "3", "--limit-images", "2")
    assert {r["seconds"] for r in plan["runs"] if r["method"] == "none"} == {4.0}
    assert all(c["command"].endswith("--limit-images 2") for c in plan["commands"])


@pytest.mark.odd_case("bad input", "plan: a missing --data-dirs folder, a model of no family, two models of "
                      "one family, an unknown method", "plan",
                      "one line naming it, exit 2, nothing written, before torch")
@pytest.mark.parametrize("bad, named", [(["--data-dirs", "NOPE"], "NOPE"),
                                        (["--models", "nonesuch-random"], "nonesuch-random"),
                                        (["--models", "tiny-random:0,tiny-random:1"], "tiny-random:1"),
                                        (["--methods", "litelvlmm"], "litelvlmm")])
def test_refusals_before_torch(shared_data, tmp_path, bad, named):
    out = tmp_path / "plan"
    argv = ["plan", "--data-dirs", str(shared_data), "--out", str(out), "--tree", str(tmp_path), *bad]
    code = ("import json, sys; from litelvlm.cli import main; rc = main(json.loads(sys.argv[1])); "
            "print(json.dumps([rc, 'torch' in sys.modules]))")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    p = subprocess.run([sys.executable, "-c", code, json.dumps(argv)], capture_output=True, text=True,
                       cwd=ROOT, env=env, timeout=120)
    assert json.loads(p.stdout.strip().splitlines()[-1]) == [2, False], p.stderr
    assert len(p.stderr.strip().splitlines()) == 1 and named in p.stderr and "Traceback" not in p.stderr
    assert not out.exists()


# two models calibrated, two eval-grounding commands under torch.distributed.run, figures (about 80 CPU-s)
@pytest.mark.slow
def test_end_to_end_the_printed_commands_run_and_figures_draws_them(shared_data, tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1",
           "LITELVLM_CACHE": str(tmp_path / "cache"), "MPLBACKEND": "Agg"}
    os.environ["LITELVLM_CACHE"] = env["LITELVLM_CACHE"]
    plan = _plan(tmp_path, shared_data, "--models", MODELS, "--methods", "litelvlm", "--budgets", "64",
                 "--calibrate", "1", "--limit-images", "1")
    assert all(r["seconds"] > 0 and r["estimate"].startswith("EXTRAPOLATED from n=1") for r in plan["runs"])
    for family in ("glamm", "unipixel"):
        cmd = next(c for c in plan["commands"] if c["family"] == family and c["split"] == "val")
        argv = shlex.split(cmd["command"])
        p = subprocess.run([sys.executable, *argv[1:]], env=env, cwd=ROOT, capture_output=True, text=True,
                           timeout=600)
        assert p.returncode == 0, p.stderr[-3000:]
        summary = (Path(cmd["out"]) / "summary.csv").read_text()
        assert "litelvlm," in summary and "none," in summary and "ciou_lo" in summary
        again = subprocess.run([sys.executable, *argv[1:]], env=env, cwd=ROOT, capture_output=True, text=True,
                               timeout=600)   # resumes: nothing left to evaluate
        assert again.returncode == 0 and "0 image(s) to evaluate" in again.stderr, again.stderr[-3000:]
    figs = tmp_path / "figs"
    assert main(["figures", "--results", str(tmp_path / "tree"), "--out", str(figs)]) == 0
    drawn = {p.name for p in figs.glob("*.png")}
    assert any("glamm-" in n for n in drawn) and any("unipixel-" in n for n in drawn), drawn
