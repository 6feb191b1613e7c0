"""One table of ``litelvlm tables`` and its three files: Markdown (a caption line, then a GitHub-flavoured
table), LaTeX (a ``table`` float with booktabs rules: ``\\toprule``, ``\\midrule`` between blocks,
``\\bottomrule``) and CSV (the numbers, unformatted, one row per line of the table; it reads back with
``pandas.read_csv`` as it was written).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from litelvlm.runs.io import write_csv, write_text

#: what a shown cell's characters become in LaTeX (the marks as superscripts, the dash and signs as LaTeX's)
LATEX_SPECIAL = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
                 "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
                 "†": r"\textsuperscript{\dag}", "‡": r"\textsuperscript{\ddag}", "—": "---", "–": "--",
                 "×": r"$\times$", "±": r"$\pm$", "≥": r"$\geq$", "≤": r"$\leq$", "−": "$-$", "<": "$<$",
                 ">": "$>$", "`": ""}


@dataclass
class Table:
    """One table: its file stem (``<kind>_<family>-<model>``), caption, shown cells (strings, the columns
    the Markdown and LaTeX show), numbers (the CSV) and the rows where a new block begins (a LaTeX
    ``\\midrule``)."""

    name: str
    caption: str
    shown: pd.DataFrame
    data: pd.DataFrame
    blocks: list[int] = field(default_factory=list)
    #: the run folder it is read from
    source: Path | None = None
    #: whether its numbers come from random or toy weights (its caption says so)
    random: bool = False


def latex_escape(text: str) -> str:
    """``text`` as LaTeX source: its special characters escaped, the marks and signs as LaTeX writes them."""
    return "".join(LATEX_SPECIAL.get(ch, ch) for ch in str(text))


def _markdown_cell(text: object) -> str:
    return str(text).replace("|", r"\|").replace("\n", " ")


def to_markdown(table: Table) -> str:
    """The caption in bold on its own line, a blank line, then the table (``| a | b |`` rows under a
    ``|---|---|`` separator)."""
    cols = list(table.shown.columns)
    lines = [f"**{_markdown_cell(table.caption)}**", "",
             "| " + " | ".join(_markdown_cell(c) for c in cols) + " |",
             "|" + "|".join("---" for _ in cols) + "|"]
    lines += ["| " + " | ".join(_markdown_cell(v) for v in row) + " |"
              for row in table.shown.itertuples(index=False)]
    return "\n".join(lines) + "\n"


def _label(name: str) -> str:
    return "tab:" + re.sub(r"[^A-Za-z0-9.:-]+", "-", name)


def to_latex(table: Table) -> str:
    """A ``table`` float: caption, label ``tab:<name>``, and a ``tabular`` with booktabs rules (``\\midrule``
    under the header and before each block; text columns left-aligned, the others right-aligned)."""
    cols = list(table.shown.columns)
    align = "".join("l" if i < _text_columns(table.shown) else "r" for i in range(len(cols)))
    body = [r"\begin{table}[t]", r"\centering", r"\caption{" + latex_escape(table.caption) + "}",
            r"\label{" + _label(table.name) + "}", r"\begin{tabular}{" + align + "}", r"\toprule",
            " & ".join(latex_escape(c) for c in cols) + r" \\", r"\midrule"]
    for i, row in enumerate(table.shown.itertuples(index=False)):
        if i in table.blocks and i > 0:
            body.append(r"\midrule")
        body.append(" & ".join(latex_escape(v) for v in row) + r" \\")
    body += [r"\bottomrule", r"\end{tabular}", r"\end{table}"]
    return "\n".join(body) + "\n"


def _text_columns(shown: pd.DataFrame) -> int:
    """How many leading columns hold names (the method, the budget): left-aligned."""
    return min(2, len(shown.columns))


def write_table(table: Table, out: Path) -> list[Path]:
    """Write ``<name>.md``, ``<name>.tex`` and ``<name>.csv`` under ``out``; returns their paths."""
    paths = [out / f"{table.name}.{ext}" for ext in ("md", "tex", "csv")]
    write_text(paths[0], to_markdown(table))
    write_text(paths[1], to_latex(table))
    write_csv(paths[2], table.data)
    return paths


__all__ = ["LATEX_SPECIAL", "Table", "latex_escape", "to_latex", "to_markdown", "write_table"]
