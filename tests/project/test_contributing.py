"""CONTRIBUTING.md matches the tree: every module, name and file it cites exists, and what it says of a
study's anatomy (where ``run`` lives, which module ``analysis/commands.py`` points at) is what the studies
do."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TEXT = (ROOT / "CONTRIBUTING.md").read_text()
#: every `code span` of the file
SPANS = re.findall(r"`([^`\n]+)`", TEXT)


def _resolves(dotted: str) -> bool:
    """Whether ``a.b.c`` is a module, or an attribute of the longest importable module prefix."""
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for name in parts[cut:]:
            if not hasattr(obj, name):
                return False
            obj = getattr(obj, name)
        return True
    return False


def test_every_cited_module_and_name_exists():
    names = {m.group(1) for s in SPANS
             for m in [re.fullmatch(r"((?:litelvlm|analysis)(?:\.\w+)+)(?:\(.*)?", s)] if m}
    assert len(names) > 10   # the scan saw the file
    missing = sorted(n for n in names if not _resolves(n))
    assert not missing, f"CONTRIBUTING.md cites names that do not exist: {missing}"


def test_every_cited_file_exists():
    paths = {s for s in SPANS if re.fullmatch(r"[\w./-]+/[\w.-]+\.(py|md|toml)", s) and "<" not in s
             and "/x/" not in s}
    assert len(paths) > 10
    missing = sorted(p for p in paths if not (ROOT / p).exists())
    assert not missing, f"CONTRIBUTING.md cites files that do not exist: {missing}"


def test_the_study_anatomy_is_the_studies_own():
    """``run`` lives in each study's ``command`` module (not ``options``), and ``analysis/commands.py`` points
    at the module CONTRIBUTING.md names."""
    from analysis.commands import COMMANDS

    options_bullet = next(b for b in TEXT.split("\n- ") if b.startswith("`options.py`"))
    assert "run(" not in options_bullet, "CONTRIBUTING.md says options.py defines run"
    pointed = re.search(r"pointing at the `(\w+)`\s+module", TEXT).group(1)
    for name, (module, _) in COMMANDS.items():
        assert module.endswith("." + pointed), (name, module)
        options = importlib.import_module(module.rsplit(".", 1)[0] + ".options")
        assert not hasattr(options, "run"), f"{options.__name__} defines run"
        assert callable(importlib.import_module(module).run)
