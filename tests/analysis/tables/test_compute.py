"""``litelvlm tables --results RUNS --out DIR`` on a small results tree of real runs on the tiny random models
(built once for the module, the cheapest arguments: ``eval-grounding`` on three COCO-128 images, ``efficiency
--flops-only``, ``validate`` on one image, ``eval-video`` on one synthetic video): each table in three formats
(the Markdown parses as a table, the LaTeX has booktabs rules, the CSV reads back as written), captions from
the runs' records with random weights said, the marks exactly where ``comparisons.csv`` says, one line per
kind without runs, and the refusals (exit 2, one line naming the folder, nothing written)."""

from __future__ import annotations

import contextlib
import io
import json
import re
import shutil
from pathlib import Path

import pandas as pd
import pytest

from analysis.tables.accuracy import ALPHA, MARK_LITELVLM, MARK_NONE
from analysis.tables.compute import read_tables
from litelvlm.cli import main
from tests.fixtures.cli import one_error_line

VIDEO = ["--anno-sets", "0", "--synthetic-videos", "1", "--synthetic-frames", "2", "--synthetic-seed", "11"]
#: the tables the tree gives: file stem -> the run folder (under the tree) it is read from
STEMS = {"grounding_glamm-tiny-random": "glamm/grounding", "efficiency_glamm-tiny": "glamm/efficiency",
         "efficiency_glamm-tiny-random": "glamm/validate", "video_videoglamm-tiny-random": "videoglamm/video",
         "stages_glamm-tiny-random": "glamm/validate"}


def _build(root: Path, coco: Path) -> None:
    refer = ["--refer-dir", str(coco), "--threads", "1"]
    runs = {
        "glamm/grounding": ["eval-grounding", "--model", "tiny-random", *refer, "--limit-images", "3",
                            "--methods", "none,litelvlm,random", "--budgets", "16,8", "--n-boot", "10"],
        "glamm/efficiency": ["efficiency", "--arch", "tiny", "--flops-only", "--methods", "none,litelvlm",
                             "--budgets", "8", "--attn", "eager", "--no-figures"],
        "glamm/validate": ["validate", "--model", "tiny-random", *refer, "--methods", "litelvlm", "--budgets",
                           "8", "--repeats", "1"],
        "videoglamm/video": ["eval-video", "--model", "videoglamm-tiny-random", *VIDEO, "--methods",
                             "litelvlm", "--budgets", "16", "--n-boot", "10", "--threads", "1"],
    }
    for folder, argv in runs.items():
        assert main([*argv, "--out", str(root / folder)]) == 0, folder


@pytest.fixture(scope="module")
def tree(session_folders, shared_data):
    """(the results tree, the tables' folder, what ``tables`` printed), made once per test session (the tests
    only read it, or copy from it)."""
    def make(base: Path) -> None:
        _build(base / "runs", shared_data / "coco128_refer")
        buffer = io.StringIO()
        with contextlib.redirect_stdout(buffer):
            assert main(["tables", "--results", str(base / "runs"), "--out", str(base / "tables")]) == 0
        (base / "printed.txt").write_text(buffer.getvalue())

    base = session_folders("tables-tree", make)
    return base / "runs", base / "tables", (base / "printed.txt").read_text()


def _markdown(path: Path) -> tuple[str, list[str], list[list[str]]]:
    """(caption, header, rows) of a Markdown table file; asserts its shape."""
    lines = path.read_text().splitlines()
    assert lines[0].startswith("**") and lines[0].endswith("**") and lines[1] == ""
    cells = [[c.strip() for c in re.split(r"(?<!\\)\|", line)[1:-1]] for line in lines[2:]]
    assert all(line.startswith("|") and line.endswith("|") for line in lines[2:])
    assert re.fullmatch(r"\|(---\|)+", lines[3]) and len(cells[1]) == len(cells[0])
    assert all(len(row) == len(cells[0]) for row in cells[2:])
    return lines[0][2:-2], cells[0], cells[2:]


def test_every_run_gives_its_table_in_three_formats(tree):
    _, out, printed = tree
    assert sorted(p.name for p in out.iterdir() if not p.name.startswith(".")) == sorted(
        f"{stem}.{ext}" for stem in STEMS for ext in ("md", "tex", "csv"))
    for stem, folder in STEMS.items():
        said = rf"^tables: .*{stem}\.{{md,tex,csv}} from .*{folder} \(--verbose prints it\)$"
        assert re.search(said, printed, re.M), printed
    assert "RANDOM OR TOY WEIGHTS in 5 of the 5 tables" in printed


def test_markdown_parses_as_a_table_with_a_row_per_csv_row(tree):
    _, out, _ = tree
    for stem in STEMS:
        _, header, rows = _markdown(out / f"{stem}.md")
        assert header[:1] == ["Method"] and len(rows) == len(pd.read_csv(out / f"{stem}.csv"))
        assert rows[0][0] == "none" and rows[0][1].startswith("all (")   # the unpruned model first
    # no interval over 3 images (too many resamples repeat one image for a bootstrap-t) nor over 1 video: a
    # dash, never [0.0, 100.0] (the caption says n)
    _, header, rows = _markdown(out / "grounding_glamm-tiny-random.md")
    assert {row[header.index("cIoU 95% CI")] for row in rows} == {"—"}
    _, header, rows = _markdown(out / "video_videoglamm-tiny-random.md")
    assert {row[header.index("J&F 95% CI")] for row in rows} == {"—"}


def test_latex_is_a_booktabs_table(tree):
    _, out, _ = tree
    for stem in STEMS:
        tex = (out / f"{stem}.tex").read_text()
        lines = tex.splitlines()
        rules = [ln for ln in lines if ln in (r"\toprule", r"\midrule", r"\bottomrule")]
        assert rules[0] == r"\toprule" and rules[1] == r"\midrule" and rules[-1] == r"\bottomrule"
        assert rules.count(r"\toprule") == 1 and rules.count(r"\bottomrule") == 1
        spec = re.search(r"\\begin\{tabular\}\{([lr]+)\}", tex).group(1)
        body = lines[lines.index(r"\toprule") + 1:lines.index(r"\bottomrule")]
        for row in (ln for ln in body if ln != r"\midrule"):
            assert row.endswith(r" \\") and len(re.split(r"(?<!\\)&", row)) == len(spec), row
        assert "\\caption{" in tex and "\\label{tab:" in tex and "†" not in tex and "%" not in tex.replace(
            r"\%", "")


def test_csv_reads_back_as_written_and_holds_the_runs_numbers(tree):
    root, out, _ = tree
    tables = {t.name: t for t in read_tables(root)[0]}
    assert set(tables) == set(STEMS)
    for stem, table in tables.items():
        pd.testing.assert_frame_equal(pd.read_csv(out / f"{stem}.csv"), table.data)
    grounding = pd.read_csv(out / "grounding_glamm-tiny-random.csv")
    summary = pd.read_csv(root / "glamm/grounding/summary.csv")
    joined = grounding.merge(summary, on=["method", "budget"], suffixes=("", "_run"))
    assert len(joined) == len(summary) == 5
    for col in ("ciou", "ciou_lo", "ciou_hi", "giou"):
        pd.testing.assert_series_equal(joined[col], joined[f"{col}_run"], check_names=False)
    assert (grounding["weights"] == "random").all() and (grounding["units"] == 3).all()


def test_captions_say_the_model_weights_dtype_and_n_from_the_records(tree):
    root, out, _ = tree
    for stem, folder in STEMS.items():
        config = json.loads((root / folder / "config.json").read_text())
        caption, _, _ = _markdown(out / f"{stem}.md")
        assert caption.startswith("RANDOM WEIGHTS: the numbers exercise the pipeline, they are not findings")
        assert config["identity"]["model"] in caption and f"Run: {folder}." in caption
        assert (config.get("model_dtype") or config["dtype"]) in caption
        assert str(root.parents[1]) not in caption   # no path of the machine (where the tree was made, too)
    caption = _markdown(out / "grounding_glamm-tiny-random.md")[0]
    assert "n = 3 images" in caption and "refcoco val (unc)" in caption
    assert "With n = 3 images no difference can be marked (the paired test needs 6" in caption
    assert "n = 1 video" in _markdown(out / "video_videoglamm-tiny-random.md")[0]
    assert "no interval is shown" in _markdown(out / "video_videoglamm-tiny-random.md")[0]
    assert "No times (a --flops-only run" in _markdown(out / "efficiency_glamm-tiny.md")[0]
    assert "n = 1 repeat" in _markdown(out / "efficiency_glamm-tiny-random.md")[0]


def _marked(path: Path) -> dict[tuple[str, str, str], str]:
    """{(method, budget, metric): its marks} of a grounding table's Markdown."""
    _, header, rows = _markdown(path)
    found = {}
    for row in rows:
        for name in ("cIoU", "gIoU"):
            cell = row[header.index(name)]
            marks = "".join(ch for ch in cell if ch in MARK_NONE + MARK_LITELVLM)
            found[(row[0], row[1], name.lower())] = marks
    return found


def test_marks_are_where_the_paired_tests_of_comparisons_csv_say(tree, tmp_path):
    root, out, _ = tree
    comparisons = pd.read_csv(root / "glamm/grounding/comparisons.csv")
    expected = {(m, str(b), metric): "" for m, b, metric in
                zip(comparisons["method"], comparisons["budget"], comparisons["metric"], strict=True)}
    for r in comparisons[comparisons["p_adjusted"] < ALPHA].itertuples():
        expected[(r.method, str(r.budget), r.metric)] += MARK_NONE if r.reference == "none" else MARK_LITELVLM
    got = _marked(out / "grounding_glamm-tiny-random.md")
    assert {k: v for k, v in got.items() if k in expected} == expected
    # the same run with two tests made significant: the marks move to exactly those cells
    copy = tmp_path / "runs" / "grounding"
    shutil.copytree(root / "glamm/grounding", copy, ignore=shutil.ignore_patterns("parts", ".*"))
    edited = comparisons.copy()
    pick = {("ciou", 8, "random", "none"): MARK_NONE, ("giou", 16, "random", "litelvlm"): MARK_LITELVLM}
    for (metric, budget, method, ref) in pick:
        at = (edited["metric"] == metric) & (edited["budget"] == budget) & (edited["method"] == method) & (
            edited["reference"] == ref)
        assert at.sum() == 1
        edited.loc[at, "p_adjusted"] = 0.01
    edited.loc[~edited.index.isin(edited.index[edited["p_adjusted"] == 0.01]), "p_adjusted"] = 0.9
    edited.to_csv(copy / "comparisons.csv", index=False)
    assert main(["tables", "--results", str(tmp_path / "runs"), "--out", str(tmp_path / "t")]) == 0
    marked = {k: v for k, v in _marked(tmp_path / "t" / "grounding_glamm-tiny-random.md").items() if v}
    assert marked == {("random", "8", "ciou"): MARK_NONE, ("random", "16", "giou"): MARK_LITELVLM}


def test_a_tree_without_a_tables_runs_writes_none_and_says_so_in_one_line(tree, tmp_path, capsys):
    root, _, _ = tree
    shutil.copytree(root / "glamm/validate", tmp_path / "runs" / "v",
                    ignore=shutil.ignore_patterns("parts", ".*"))
    assert main(["tables", "--results", str(tmp_path / "runs"), "--out", str(tmp_path / "t")]) == 0
    printed = capsys.readouterr().out.splitlines()
    for kind, command in (("grounding", "eval-grounding"), ("video", "eval-video")):
        said = [ln for ln in printed if ln.startswith(f"tables: no {kind} table: ")]
        assert said == [f"tables: no {kind} table: no run of litelvlm {command} under {tmp_path / 'runs'}"]
    assert not any(ln.startswith("tables: no efficiency table") for ln in printed)
    assert sorted(p.name for p in (tmp_path / "t").glob("*_*.*")) == [   # validate: timed by stage too
        f"{kind}_glamm-tiny-random.{ext}" for kind in ("efficiency", "stages")
        for ext in ("csv", "md", "tex")]
    # a second run on the same --out with another tree: the earlier run's tables are not left beside the new
    # ones; a file of the user's there is not the earlier run's, and stays
    (tmp_path / "t" / "my_notes.md").write_text("mine")
    shutil.copytree(root / "videoglamm/video", tmp_path / "runs2" / "video",
                    ignore=shutil.ignore_patterns("parts", ".*"))
    assert main(["tables", "--results", str(tmp_path / "runs2"), "--out", str(tmp_path / "t")]) == 0
    assert sorted(p.stem for p in (tmp_path / "t").glob("*_*.*")) == ["my_notes"] + [
        "video_videoglamm-tiny-random"] * 3


def test_a_damaged_run_is_skipped_naming_its_folder_and_no_table_at_all_is_exit_2(tree, tmp_path, capsys):
    root, _, _ = tree
    damaged = tmp_path / "runs" / "grounding"
    shutil.copytree(root / "glamm/grounding", damaged, ignore=shutil.ignore_patterns("parts", ".*"))
    pd.read_csv(damaged / "summary.csv").drop(columns=["giou"]).to_csv(damaged / "summary.csv", index=False)
    out = tmp_path / "t"
    rc = main(["tables", "--results", str(tmp_path / "runs"), "--out", str(out)])
    captured = capsys.readouterr()
    assert f"tables: skipping {damaged} (grounding): not of this version's layout (no 'giou' column" \
           in captured.out
    line = one_error_line(rc, captured.err, "tables")
    assert str(tmp_path / "runs") in line and not out.exists()
