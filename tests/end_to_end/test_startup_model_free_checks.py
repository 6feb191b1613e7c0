"""Every check that needs no model runs before anything loads (issue #67, item 8): a budget above the family's
N as its card gives it (a random preset, a released checkpoint's hub id) and a ``--refer-dir`` without
``refs(unc).p`` are refused with exit 2 and none of the heavy modules imported (the pattern of
``test_startup.py``)."""

from __future__ import annotations

import pytest

from litelvlm.cli import main
from tests.end_to_end.test_startup import _run

BUDGET_TOO_LARGE = {
    "eval-grounding": ["--refer-dir", "REFER", "--budgets", "1000"],
    "positions": ["--refer-dir", "REFER", "--budgets", "1000"],
    "validate": ["--refer-dir", "REFER", "--budgets", "600"],
    "eval-grounding hub id": ["--refer-dir", "REFER", "--budgets", "1000", "--model", "MBZUAI/GLaMM-RefSeg"],
}
NO_REFS = ("eval-grounding", "positions", "importance", "validate", "reversal", "sink", "retention")


def _argv(command: str, extra: list[str], refer: str, out: str) -> list[str]:
    return [command.split()[0], *[refer if a == "REFER" else a for a in extra], "--out", out]


@pytest.mark.parametrize("case", sorted(BUDGET_TOO_LARGE))
def test_a_budget_above_the_cards_n_is_refused_before_the_heavy_imports(case, tmp_path, coco128):
    result = _run(_argv(case, BUDGET_TOO_LARGE[case], str(coco128), str(tmp_path / "out")))
    assert result == {"rc": 2, "heavy": []}
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("command", NO_REFS)
def test_a_refer_folder_without_refs_is_refused_before_the_heavy_imports(command, tmp_path):
    empty = tmp_path / "refer"
    empty.mkdir()
    result = _run([command, "--refer-dir", str(empty), "--out", str(tmp_path / "out")])
    assert result == {"rc": 2, "heavy": []}
    assert not (tmp_path / "out").exists()


def test_the_refusals_name_the_budget_and_the_missing_file(tmp_path, coco128, capsys):
    assert main(["eval-grounding", "--refer-dir", str(coco128), "--budgets", "1000", "--out",
                 str(tmp_path / "a")]) == 2
    assert "budget must satisfy 1 <= K <= 576" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert main(["reversal", "--refer-dir", str(tmp_path / "empty"), "--out", str(tmp_path / "b")]) == 2
    assert "'refs(unc).p' not found in --refer-dir" in capsys.readouterr().err


@pytest.mark.parametrize("command", ["select", "explore"])
def test_select_and_explore_refuse_a_budget_above_the_cards_n_before_the_heavy_imports(command, tmp_path,
                                                                                          coco128):
    image = str(next((coco128 / "images").glob("*.jpg")))
    argv = {"select": ["select", "--model", "tiny-random:0", "--image", image, "--text", "bowl", "--budget",
                       "1000"],
            "explore": ["explore", "--image", image, "--text", "bowl", "--budgets", "64,1000", "--out",
                        str(tmp_path / "page.html")]}[command]
    assert _run(argv) == {"rc": 2, "heavy": []}
    assert not (tmp_path / "page.html").exists()
