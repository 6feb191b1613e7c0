"""docs/testing.md's table of odd-input and fault classes is the one the tests' ``odd_case`` markers
generate."""

from __future__ import annotations

from tests import odd_cases_table


def test_docs_table_is_generated_from_the_markers():
    rows = odd_cases_table.cases()
    assert rows, "no test carries an odd_case marker"
    assert odd_cases_table.current() == odd_cases_table.render(rows), \
        "docs/testing.md's odd-case table is stale: run `python tests/odd_cases_table.py --write`"
