"""``litelvlm tables``' refusals: bad input is one line naming the folder, exit 2, nothing written; the option
checks (:mod:`analysis.tables.options`) run before pandas or torch is imported."""

from __future__ import annotations

import json
import subprocess
import sys

from litelvlm.cli import main
from tests.fixtures.cli import one_error_line

CODE = """
import json, sys
from litelvlm.cli import main
rc = main(json.loads(sys.argv[1]))
heavy = sorted(m for m in ("torch", "pandas", "matplotlib") if m in sys.modules)
print(json.dumps({"rc": rc, "heavy": heavy}))
"""


def test_results_that_is_not_a_folder_is_refused_before_anything_heavy(tmp_path):
    a_file = tmp_path / "runs.txt"
    a_file.write_text("not a tree")
    argv = ["tables", "--results", str(a_file), "--out", str(tmp_path / "t")]
    done = subprocess.run([sys.executable, "-c", CODE, json.dumps(argv)], capture_output=True, text=True,
                          timeout=120)
    assert json.loads(done.stdout.strip().splitlines()[-1]) == {"rc": 2, "heavy": []}
    line = one_error_line(2, done.stderr, "tables")
    assert f"--results {str(a_file)!r} is not a folder" in line and not (tmp_path / "t").exists()


def test_an_out_holding_the_tree_it_reads_is_refused(tmp_path, capsys):
    runs = tmp_path / "runs"
    runs.mkdir()
    for out in (runs, tmp_path):
        rc = main(["tables", "--results", str(runs), "--out", str(out)])
        line = one_error_line(rc, capsys.readouterr().err, "tables")
        assert f"--out {str(out)!r} holds the results tree {str(runs)!r}" in line
    assert list(runs.iterdir()) == []


def test_a_tree_without_runs_says_each_table_is_missing_then_exit_2_naming_it(tmp_path, capsys):
    runs = tmp_path / "runs"
    (runs / "notes").mkdir(parents=True)
    (runs / "notes" / "summary.csv").write_text("method,budget\n")   # a table's file, no config.json
    rc = main(["tables", "--results", str(runs), "--out", str(tmp_path / "t")])
    captured = capsys.readouterr()
    line = one_error_line(rc, captured.err, "tables")
    assert f"--results {str(runs)!r} gives no table" in line and not (tmp_path / "t").exists()
    printed = captured.out.splitlines()
    assert [ln.split(":")[1].strip() for ln in printed if ln.startswith("tables: no ")] == [
        "no grounding table", "no efficiency table", "no video table", "no stages table"]
    assert f"tables: skipping {runs / 'notes'}: it holds summary.csv but no config.json" in captured.out
