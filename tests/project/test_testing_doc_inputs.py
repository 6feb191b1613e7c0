"""docs/testing.md's hand-written table of odd inputs (``| Input | Commands tried | What happens |``) says
what the tests assert: an ``eval-grounding`` input that ``tests/end_to_end/test_odd_inputs.py`` refuses (its
``error`` cases) is named in no row that ends in finite results, and in a row that says the error. The
segmentation cases are matched by their words; the generated table below it comes from the ``odd_case``
markers (``tests/odd_cases_table.py``)."""

from __future__ import annotations

import re
from pathlib import Path

from tests.end_to_end.test_odd_inputs import REFER_CASES

DOC = Path(__file__).resolve().parents[2] / "docs" / "testing.md"
#: a refused case of ``REFER_CASES`` -> how a row of the table would name it
NAMED = {"polygon of two points": r"\b(2|two)[- ]point", "no segmentation": r"segmentation `?None",
         "garbage RLE": r"garbage RLE", "RLE of another size": r"RLE of another size"}


def _input_rows() -> list[list[str]]:
    """The hand-written table's rows, each as its three cells."""
    text = DOC.read_text(encoding="utf-8")
    table = text[text.index("| Input | Commands tried | What happens |"):]
    table = table[:table.index("\n\n")]
    return [[c.strip() for c in line.strip("|").split(" | ")] for line in table.splitlines()[2:]]


def test_no_refused_segmentation_is_said_to_give_finite_results():
    rows = [r for r in _input_rows() if "eval-grounding" in r[1]]
    for case, pattern in NAMED.items():
        assert REFER_CASES[case][2] == "error", case
        said = [r for r in rows if re.search(pattern, r[0])]
        assert said, f"{case}: in no row of the input table"
        assert all(not r[2].startswith("finite results") and "error" in r[2] for r in said), (case, said)
