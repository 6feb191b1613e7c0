"""The README's list of methods names every published method the registry holds (issue #67, item 8: FlowCut
was missing), and its explore example does not put an article before the official question's own "the"."""

from __future__ import annotations

import re
from pathlib import Path

from litelvlm.methods import TABLE

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()


def test_every_published_method_is_in_the_readmes_list():
    bullet = README[README.index("**`litelvlm/`, the library**"):README.index("**`analysis/`, the studies**")]
    names = {m.group(1) for e in TABLE.values() if (m := re.match(r"([A-Z][\w+-]+)[ ‡(:]", e.description))}
    names = {n for n in names if n not in ("LiteLVLM", "LiteLVLM's")}
    assert "FlowCut" in names
    missing = sorted(n for n in names if n.rstrip("+") not in bullet)
    assert missing == []


def test_the_explore_example_text_reads_well_in_glamms_question():
    """GLaMM's official question is "Can you segment the {class_name} in this image?" (official
    dataset/utils/utils.py L88):
    an example text starting with "the" would read "segment the the bowl"."""
    example = re.search(r'litelvlm explore [^`]*--text "([^"]+)"', README).group(1)
    assert not example.lower().startswith("the ")
