"""Every check that needs no model runs before anything loads (issue #67, item 8): a budget above the family's
N as its card gives it (a random preset, a released checkpoint's hub id) and a ``--refer-dir`` without
``refs(unc).p`` are refused with exit 2 and none of the heavy modules imported (the pattern of
``test_startup.py``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from litelvlm.cli import main
from tests.fixtures.fresh import run_fresh

BUDGET_TOO_LARGE = {
    "eval-grounding": ["--refer-dir", "REFER", "--budgets", "1000"],
    "positions": ["--refer-dir", "REFER", "--budgets", "1000"],
    "validate": ["--refer-dir", "REFER", "--budgets", "600"],
    "eval-grounding hub id": ["--refer-dir", "REFER", "--budgets", "1000", "--model", "MBZUAI/GLaMM-RefSeg"],
}
NO_REFS = ("eval-grounding", "positions", "importance", "validate", "reversal", "sink", "retention")
#: the image commands, each given the video family's model
IMAGE_COMMANDS = ("eval-grounding", "positions", "importance", "retention", "select", "explore")
VIDEO_MODEL = "videoglamm-tiny-random:0"


def _argv(command: str, extra: list[str], refer: str, out: str) -> list[str]:
    return [command.split()[0], *[refer if a == "REFER" else a for a in extra], "--out", out]


@pytest.fixture(scope="module")
def refused(tmp_path_factory, coco128) -> tuple[Path, dict[str, dict]]:
    """Every command line of this module refused before the heavy imports, run in turn in ONE fresh
    interpreter (``tests/fixtures/fresh.py``): its folder and {case: {"rc", "heavy"}}."""
    root = tmp_path_factory.mktemp("model-free")
    (root / "refer").mkdir()   # a --refer-dir without refs(unc).p
    image = str(next((coco128 / "images").glob("*.jpg")))
    cases = {f"budget {case}": _argv(case, BUDGET_TOO_LARGE[case], str(coco128), str(root / f"out-{i}"))
             for i, case in enumerate(sorted(BUDGET_TOO_LARGE))}
    cases.update({f"refs {c}": [c, "--refer-dir", str(root / "refer"), "--out", str(root / f"out-{c}")]
                  for c in NO_REFS})
    cases["select"] = ["select", "--model", "tiny-random:0", "--image", image, "--text", "bowl", "--budget",
                       "1000"]
    cases["explore"] = ["explore", "--image", image, "--text", "bowl", "--budgets", "64,1000", "--out",
                        str(root / "page.html")]
    cases.update({f"video {c}": _video_argv(c, str(coco128), image, str(root / f"video-{c}"))
                  for c in IMAGE_COMMANDS})
    return root, run_fresh(cases)


def _video_argv(command: str, refer: str, image: str, out: str) -> list[str]:
    """``command`` on the video family's model, its other arguments valid."""
    if command == "select":
        return ["select", "--model", VIDEO_MODEL, "--image", image, "--text", "bowl", "--budget", "16"]
    if command == "explore":
        return ["explore", "--model", VIDEO_MODEL, "--image", image, "--text", "bowl", "--out", out + ".html"]
    return [command, "--model", VIDEO_MODEL, "--refer-dir", refer, "--out", out]


@pytest.mark.parametrize("case", sorted(BUDGET_TOO_LARGE))
def test_a_budget_above_the_cards_n_is_refused_before_the_heavy_imports(case, refused):
    root, results = refused
    assert results[f"budget {case}"] == {"rc": 2, "heavy": []}
    assert not (root / f"out-{sorted(BUDGET_TOO_LARGE).index(case)}").exists()


@pytest.mark.parametrize("command", NO_REFS)
def test_a_refer_folder_without_refs_is_refused_before_the_heavy_imports(command, refused):
    root, results = refused
    assert results[f"refs {command}"] == {"rc": 2, "heavy": []}
    assert not (root / f"out-{command}").exists()


def test_the_refusals_name_the_budget_and_the_missing_file(tmp_path, coco128, capsys):
    assert main(["eval-grounding", "--refer-dir", str(coco128), "--budgets", "1000", "--out",
                 str(tmp_path / "a")]) == 2
    assert "budget must satisfy 1 <= K <= 576" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert main(["reversal", "--refer-dir", str(tmp_path / "empty"), "--out", str(tmp_path / "b")]) == 2
    assert "'refs(unc).p' not found in --refer-dir" in capsys.readouterr().err


@pytest.mark.parametrize("command", ["select", "explore"])
def test_select_and_explore_refuse_a_budget_above_the_cards_n_before_the_heavy_imports(command, refused):
    root, results = refused
    assert results[command] == {"rc": 2, "heavy": []}
    assert not (root / "page.html").exists()


@pytest.mark.parametrize("command", IMAGE_COMMANDS)
def test_an_image_command_refuses_a_video_model_before_the_heavy_imports(command, refused, tmp_path, coco128,
                                                                         capsys):
    """A video family's model in an image command: one line naming the model, its family, the image families
    the command runs and ``eval-video``, exit 2, nothing loaded or written, whatever the methods."""
    root, results = refused
    assert results[f"video {command}"] == {"rc": 2, "heavy": []}
    assert not list(root.glob(f"video-{command}*"))
    image = str(next((coco128 / "images").glob("*.jpg")))
    argv = _video_argv(command, str(coco128), image, str(tmp_path / "o"))
    assert main([*argv, *(["--method", "cdpruner"] if command == "select" else ["--methods", "cdpruner"]
                          if command not in ("importance",) else [])]) == 2
    err = capsys.readouterr().err
    assert (f"--model {VIDEO_MODEL}: the videoglamm family's input is a video; {command} runs the image "
            "families glamm, sa2va, unipixel (eval-video runs this one)") in err, err
