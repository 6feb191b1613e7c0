"""A bad argument fails before the heavy imports: every subcommand returns 2 without importing torch
(nor transformers, open_clip, pandas, scipy, matplotlib or captum), checked in a fresh interpreter (one
for all the refused command lines, the heavy modules noted after each).
Parsing imports only the subcommand's module, whose top-level imports are light; the output-folder
and thread checks run before the subcommand does. A module whose docstring says it imports nothing heavy is
held to it the same way. No timing is asserted (see docs/testing.md)."""

from __future__ import annotations

import ast
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from litelvlm.cli import all_commands
from tests.fixtures.fresh import HEAVY, run_fresh
from tests.fixtures.sources import parsed

#: one bad value of an option each subcommand has (refused at parse time)
BAD_ARGUMENT = {
    "reversal": ["--limit-sentences", "0"], "sink": ["--ablate-from", "1.5"],
    "retention": ["--budgets", "64,1.5"],
    "eval-grounding": ["--budgets", "0"], "importance": ["--group", "x"], "efficiency": ["--arch", "nope"],
    "validate": ["--repeats", "0"], "positions": ["--budgets", "0"], "demo": ["--scenes", "0"],
    "eval-video": ["--budgets", "0"], "figures": ["--threads", "1.5"], "plan": ["--gpus", "0"],
    "select": ["--budget", "1.5"], "explore": ["--budgets", "0"], "toy-data": ["--size", "0"],
    "toy-train": ["--steps", "0"], "tables": ["--threads", "1.5"],
}


def _run(argv: list[str]) -> dict:
    """``litelvlm ARGV`` in a fresh interpreter: {"rc", "heavy"}."""
    return run_fresh({"case": argv})["case"]


#: one bad value each study refuses in its light ``options.check_args`` (after parsing, before torch)
BAD_AFTER_PARSING = {
    "reversal": ["--save-maps", "-1"], "sink": ["--examples", "-1", "--expressions", "x.json"],
    "retention": ["--image-dir", "images"], "importance": ["--signals", "nope", "--refer-dir", "."],
    "efficiency": ["--attn", "flash"], "demo": ["--budget-share", "2"], "figures": [],
    "eval-video": ["--methods", "none"],
}
#: the commands whose ``--out`` is a file in the usage-error case
USAGE_AFTER_PARSING = ["reversal", "sink", "retention", "eval-grounding", "importance", "demo"]


@pytest.fixture(scope="module")
def refused(tmp_path_factory) -> tuple[Path, dict[str, dict]]:
    """Every refused command line of this module run once, in turn, in ONE fresh interpreter (a fresh
    interpreter per command line costs a second of CPU each): its folder and {case: {"rc", "heavy"}}, the
    heavy modules loaded after that case (they only accumulate, so a case that loaded one shows it)."""
    root = tmp_path_factory.mktemp("startup")
    cases = {f"bad {c}": [c, *BAD_ARGUMENT[c], "--out", str(root / f"bad-{c}")] for c in sorted(BAD_ARGUMENT)}
    for command in USAGE_AFTER_PARSING:
        a_file = root / f"a-file-{command}"  # --out that is a file: check_common_options, before the run
        a_file.write_text("keep me")
        argv = [command, "--out", str(a_file), "--model", "tiny-random"]
        if command in ("eval-grounding", "importance"):
            argv += ["--refer-dir", str(root)]
        cases[f"usage {command}"] = argv
    cases.update({f"combination {c}": [c, *BAD_AFTER_PARSING[c], "--out", str(root / f"combination-{c}")]
                  for c in sorted(BAD_AFTER_PARSING)})
    return root, run_fresh(cases)


def test_every_subcommand_has_a_case():
    assert set(BAD_ARGUMENT) == set(all_commands())


@pytest.mark.parametrize("command", sorted(BAD_ARGUMENT))
def test_a_bad_argument_fails_before_the_heavy_imports(command, refused):
    root, results = refused
    assert results[f"bad {command}"] == {"rc": 2, "heavy": []}
    assert not (root / f"bad-{command}").exists()


@pytest.mark.parametrize("command", USAGE_AFTER_PARSING)
def test_a_usage_error_after_parsing_needs_no_torch_either(command, refused):
    root, results = refused
    assert results[f"usage {command}"] == {"rc": 2, "heavy": []}
    assert (root / f"a-file-{command}").read_text() == "keep me"


@pytest.mark.parametrize("command", sorted(BAD_AFTER_PARSING))
def test_a_bad_combination_is_refused_by_the_light_options_module(command, refused):
    root, results = refused
    assert results[f"combination {command}"] == {"rc": 2, "heavy": []}
    assert not (root / f"combination-{command}").exists()


IMPORTS = """
import importlib, json, sys
from analysis.commands import COMMANDS
for module, _ in COMMANDS.values():
    importlib.import_module(module)
    importlib.import_module(module.rsplit(".", 1)[0])  # the study package exports its options and run
print(json.dumps(sorted(m for m in json.loads(sys.argv[1]) if m in sys.modules)))
"""


def test_every_study_options_module_and_package_is_light():
    """Each subcommand's module (a study's ``command``, which imports its ``options``) and its package import
    nothing heavy."""
    done = subprocess.run([sys.executable, "-c", IMPORTS, json.dumps(HEAVY)], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.strip().splitlines()[-1]) == []


ROOT = Path(__file__).resolve().parents[2]
#: a docstring's claim that importing the module loads nothing heavy
LIGHT_CLAIM = re.compile(r"(?:This|this) (?:module|package file) (?:is light|imports nothing heavy)"
                         r"|Importing this module imports nothing heavy")
LOADED = """
import importlib, json, sys
heavy, seen = json.loads(sys.argv[2]), {}
for module in json.loads(sys.argv[1]):
    importlib.import_module(module)
    seen[module] = sorted(m for m in heavy if m in sys.modules)
print(json.dumps(seen))
"""


def _claims_light() -> list[str]:
    found = []
    for package in ("litelvlm", "analysis"):
        for path in sorted((ROOT / package).rglob("*.py")):
            doc = " ".join((ast.get_docstring(parsed(path)) or "").split())
            if LIGHT_CLAIM.search(doc):
                parts = path.relative_to(ROOT).with_suffix("").parts
                found.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return found


def test_a_module_that_says_it_is_light_loads_nothing_heavy():
    """Each module whose docstring says it imports nothing heavy (its parents' ``__init__`` included: that is
    what importing it costs) loads none of :data:`HEAVY`: imported one after another in one fresh
    interpreter, the heavy modules loaded after each (they only accumulate, so none after the last means none
    for any module imported alone)."""
    modules = _claims_light()
    assert len(modules) >= 8, modules
    done = subprocess.run([sys.executable, "-c", LOADED, json.dumps(modules), json.dumps(HEAVY)],
                          capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert list(seen) == modules
    assert {module: heavy for module, heavy in seen.items() if heavy} == {}
