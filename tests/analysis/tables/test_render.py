"""A table's three files (:mod:`analysis.tables.render`): the Markdown is a caption line and a GitHub table
whose cells never break the row (a ``|`` escaped), the LaTeX a booktabs ``tabular`` (a ``\\midrule`` before
each block, every special character escaped, the marks as superscripts), the CSV the numbers as written."""

from __future__ import annotations

import pandas as pd

from analysis.tables.render import Table, latex_escape, to_latex, to_markdown, write_table


def _table() -> Table:
    shown = pd.DataFrame({"Method": ["none", "a|b", "c_d"], "K": ["all (576)", "64", "64"],
                          "cIoU": ["50.0", "40.0†", "30.0‡"],
                          "% of none": ["100.0", "80.0 [70.1, 90.2]", "—"]})
    data = pd.DataFrame({"method": ["none", "a|b", "c_d"], "budget": [576, 64, 64], "ciou": [0.5, 0.4, 0.3],
                         "ciou_p_vs_none": [float("nan"), 0.01, 0.5]})
    return Table("grounding_x-y", "RANDOM WEIGHTS: 5% & more, p < 0.05", shown, data, blocks=[0, 1])


def test_latex_escape_writes_specials_and_marks_as_latex():
    assert latex_escape("5% & a_b #1 {x} $y") == r"5\% \& a\_b \#1 \{x\} \$y"
    assert latex_escape("40.0†‡ — ×2 p < 0.05") == (r"40.0\textsuperscript{\dag}\textsuperscript{\ddag} --- "
                                                    r"$\times$2 p $<$ 0.05")


def test_markdown_is_a_caption_and_a_table_whose_pipes_are_escaped():
    lines = to_markdown(_table()).splitlines()
    assert lines[:2] == ["**RANDOM WEIGHTS: 5% & more, p < 0.05**", ""]
    assert lines[2] == "| Method | K | cIoU | % of none |" and lines[3] == "|---|---|---|---|"
    assert lines[5] == r"| a\|b | 64 | 40.0† | 80.0 [70.1, 90.2] |" and len(lines) == 7


def test_latex_has_booktabs_rules_and_a_midrule_before_each_block():
    tex = to_latex(_table()).splitlines()
    start = tex.index(r"\toprule")
    assert tex[start:start + 3] == [r"\toprule", r"Method & K & cIoU & \% of none \\", r"\midrule"]
    assert tex[start + 3:start + 6] == [r"none & all (576) & 50.0 & 100.0 \\", r"\midrule",
                                        r"a|b & 64 & 40.0\textsuperscript{\dag} & 80.0 [70.1, 90.2] \\"]
    assert tex[-3:] == [r"\bottomrule", r"\end{tabular}", r"\end{table}"]
    assert r"\begin{tabular}{llrr}" in tex and r"\label{tab:grounding_x-y}" not in tex
    assert r"\caption{RANDOM WEIGHTS: 5\% \& more, p $<$ 0.05}" in tex and r"\label{tab:grounding-x-y}" in tex


def test_the_csv_reads_back_as_written(tmp_path):
    paths = write_table(_table(), tmp_path)
    assert [p.name for p in paths] == ["grounding_x-y.md", "grounding_x-y.tex", "grounding_x-y.csv"]
    pd.testing.assert_frame_equal(pd.read_csv(paths[2]), _table().data)
