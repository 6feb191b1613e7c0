"""docs/testing.md's test counts are those pytest collects (``tests/suite_counts.py``)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from tests import suite_counts


def test_docs_counts_are_the_collected_ones(request, deselected_items):
    if not suite_counts.is_whole_default_run(request.config):
        pytest.skip("checked when the whole default suite runs (`python -m pytest -n 2`)")
    counts = suite_counts.tally(request.session.items, deselected_items)
    assert suite_counts.current() == suite_counts.render(counts), \
        "docs/testing.md's test counts are stale: run `python tests/suite_counts.py --write`"


def _config(args=("tests",), markexpr=suite_counts.DEFAULT_MARKEXPR, keyword="", **extra):
    option = SimpleNamespace(markexpr=markexpr, keyword=keyword, deselect=None, ignore=None, **extra)
    return SimpleNamespace(option=option, args=list(args),
                           invocation_params=SimpleNamespace(dir=suite_counts.TESTS.parent))


def test_only_a_whole_default_run_is_compared():
    assert suite_counts.is_whole_default_run(_config())
    assert suite_counts.is_whole_default_run(_config(args=[str(suite_counts.TESTS)]))
    assert not suite_counts.is_whole_default_run(_config(args=["tests/project/test_suite_counts.py"]))
    assert not suite_counts.is_whole_default_run(_config(markexpr="slow"))
    assert not suite_counts.is_whole_default_run(_config(keyword="counts"))
    assert not suite_counts.is_whole_default_run(_config(lf=True))


def test_the_block_counts_the_deselected_by_marker():
    def item(*marks):
        return SimpleNamespace(get_closest_marker=lambda name: name if name in marks else None)

    counts = suite_counts.tally([item(), item()], [item("slow"), item("slow", "gpu"), item("gpu"), item()])
    assert counts == {"default": 2, "slow": 2, "gpu": 2}
    block = suite_counts.render({"default": 2144, "slow": 170, "gpu": 12})
    assert block.startswith(suite_counts.BEGIN) and block.endswith(suite_counts.END)
    assert "**2,144**" in block and "**170**" in block and "**12**" in block
