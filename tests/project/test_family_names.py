"""A family is one package: outside ``litelvlm/<family>/``, no module of ``litelvlm/`` or ``analysis/`` names
a family in code (identifiers, import paths, string constants that are not docstrings), except its one
registration line in ``litelvlm/registry/families.py``. The command line and the studies ask the family's card
(:mod:`litelvlm.models.family_card`) and the pipeline contract instead. Comments and docstrings may cite a
family (they explain, they do not dispatch)."""

from __future__ import annotations

import io
import re
import tokenize
from pathlib import Path

from litelvlm.registry.families import REGISTERED, family_names

ROOT = Path(__file__).resolve().parents[2]


def _code_tokens(path: Path):
    """(line, text) of every name and non-docstring string token of ``path``."""
    prev = None
    for t in tokenize.generate_tokens(io.StringIO(path.read_text(encoding="utf-8")).readline):
        docstring = (t.type == tokenize.STRING
                     and (prev is None or prev.type in (tokenize.INDENT, tokenize.NEWLINE,
                                                                                  tokenize.DEDENT))
                     and t.string.lstrip("rbuRBU").startswith(('"""', "'''")))
        if t.type == tokenize.NAME or (t.type == tokenize.STRING and not docstring):
            yield t.start[0], t.string
        if t.type not in (tokenize.COMMENT, tokenize.NL):
            prev = t


def family_mentions() -> dict[str, list[str]]:
    """family -> ``path:line: token`` of each mention outside the family's package and its registration."""
    names = family_names()
    pattern = {f: re.compile(rf"(?i){re.escape(f)}") for f in names}
    longer = {f: [o for o in names if f in o and f != o] for f in names}
    registration = {ref.module for ref in REGISTERED}   # the card modules the registration lines name
    out: dict[str, list[str]] = {f: [] for f in names}
    for path in sorted([*(ROOT / "litelvlm").rglob("*.py"), *(ROOT / "analysis").rglob("*.py")]):
        rel = path.relative_to(ROOT).as_posix()
        for line, text in _code_tokens(path):
            if rel == "litelvlm/registry/families.py" and text.strip("\"'") in registration:
                continue
            for f in names:
                if rel.startswith(f"litelvlm/{f}/"):
                    continue
                bare = text
                for o in longer[f]:
                    bare = re.sub(rf"(?i){re.escape(o)}", "", bare)
                if pattern[f].search(bare):
                    out[f].append(f"{rel}:{line}: {text[:60]}")
    return out




def test_outside_its_package_no_module_names_a_family():
    found = family_mentions()
    assert not any(found.values()), "\n".join(m for ms in found.values() for m in ms)


def test_each_family_is_registered_by_one_line():
    source = (ROOT / "litelvlm" / "registry" / "families.py").read_text(encoding="utf-8")
    for ref in REGISTERED:
        assert source.count(f'Lazy("{ref.module}", "{ref.attribute}")') == 1 and source.count(
            f'"{ref.module}"') == 1
    assert len(REGISTERED) == len(family_names()) == len(set(REGISTERED))
