"""A resume refusal (:func:`litelvlm.runs.resume.check_config`) names as ``--key`` only the options of
the command that refuses: what a study records in ``config.json`` beside its options (the model's dtype, the
images counted, ``eval-grounding``'s ``unbatched``, ...) is either left out of the comparison, where the
options it comes from are compared, or named as the recorded fact it is.

The keys each resuming study records are read from its ``analysis/<study>/compute.py`` (its ``config``
dict's literal keys, ``config.update`` keywords, ``config[KEY] =`` and the records spread into it, each
helper's keys computed here), so a key added there is checked here without a list kept by hand. ``reversal``,
``sink``, ``retention`` and ``efficiency`` never compare their ``config.json``: they only refuse another
``--model`` or ``--backend`` (:func:`~analysis.common.runs.study.check_same_model`)."""

from __future__ import annotations

import argparse
import ast
import importlib
import json
import re
from dataclasses import fields
from pathlib import Path
from types import SimpleNamespace

import pytest

from analysis.commands import COMMANDS
from analysis.common.grounding.grounding_runs import clip_record
from analysis.common.options.prefill_args import prefill_record
from analysis.common.presentation.caveats import TIMING_KEY
from analysis.common.runs.identity import run_identity
from analysis.common.runs.study import llm_attn_record
from analysis.video.batches import batch_record
from litelvlm.cli import build_parser
from litelvlm.errors import LiteLVLMError
from litelvlm.registry.families import image_resize_record
from litelvlm.runs.resume import NOT_COMPARED, RECORDED_FACTS, check_config

ROOT = Path(__file__).resolve().parents[4]
#: the commands whose run folders resume (``RunFolder.resume``), and their study's package
RESUMING = {"eval-grounding": "grounding", "importance": "importance", "validate": "validate",
            "positions": "positions", "eval-video": "video"}


def options(command: str) -> set[str]:
    """The options of ``command``'s parser (``litelvlm.cli.build_parser(only=command)``), as keys
    (``--limit-images`` -> ``limit_images``)."""
    parser = build_parser(only=command)
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices[command]
    return {flag[2:].replace("-", "_") for a in sub._actions for flag in a.option_strings
            if flag.startswith("--")}


def _runner_config_keys() -> set[str]:
    """The keys every family's video runner's ``config()`` returns (read from its source, which imports
    the family's model code)."""
    keys: set[str] = set()
    for path in sorted((ROOT / "litelvlm").glob("*/video_runner.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef) and node.name == "config":
                for ret in (n for n in ast.walk(node) if isinstance(n, ast.Return)):
                    keys |= {k.value for k in getattr(ret.value, "keys", []) if isinstance(k, ast.Constant)}
    assert keys, "no video runner's config() found"
    return keys


def _spread_keys(call: ast.AST) -> set[str]:
    """The keys of a record spread into ``config`` (``**clip_record(pipe)``, ...), computed from its
    helper."""
    name = call.func.attr if isinstance(call.func, ast.Attribute) else call.func.id
    mapped = SimpleNamespace(abilities=SimpleNamespace(clip_side="mapped"), describe=lambda: {"clip": "c"})
    patches = SimpleNamespace(abilities=SimpleNamespace(clip_side="patches"), clip=None)
    spreads = {"clip_record": lambda: {**clip_record(mapped), **clip_record(patches)},
               "run_identity": lambda: run_identity("grounding", "tiny-random"),
               "image_resize_record": lambda: image_resize_record("another", "tiny-random"),
               "batch_record": lambda: batch_record(2, {"method": "why"}),
               "config": lambda: dict.fromkeys(_runner_config_keys()),   # run.config(): the family's record
               "prefill_record": lambda: prefill_record("captured", "fused"),
               "llm_attn_record": lambda: llm_attn_record(SimpleNamespace(config=SimpleNamespace(
                   _attn_implementation="sdpa"))),
               }
    assert name in spreads, f"a record {name}(...) spread into config.json: add its keys to this test"
    return set(spreads[name]())


def _imported(tree: ast.Module, name: str) -> object:
    """The value of ``name``, imported by the module ``tree`` from another (``TIMING_KEY``)."""
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and any(a.name == name and a.asname is None for a in node.names):
            return getattr(importlib.import_module(node.module), name)
    raise AssertionError(f"config[{name}]: {name} is not imported by name")


def recorded_keys(study: str) -> set[str]:
    """Every key ``analysis/<study>/compute.py`` records in its ``config`` dict beside the options."""
    tree = ast.parse((ROOT / "analysis" / study / "compute.py").read_text())
    keys: set[str] = set()
    for node in ast.walk(tree):
        func = getattr(node, "func", None)
        if isinstance(func, ast.Attribute) and func.attr == "update" and _is_config(func.value):
            for kw in node.keywords:
                keys |= {kw.arg} if kw.arg else _spread_keys(kw.value)
            for arg in node.args:   # config.update(a_record(...))
                keys |= _spread_keys(arg) if isinstance(arg, ast.Call) else set()
        elif isinstance(node, ast.Subscript) and _is_config(node.value) and isinstance(node.ctx, ast.Store):
            key = node.slice
            keys.add(key.value if isinstance(key, ast.Constant) else _imported(tree, key.id))
        elif isinstance(node, ast.Assign) and any(map(_is_config, node.targets)) \
                and isinstance(node.value, ast.Dict):
            for k, v in zip(node.value.keys, node.value.values, strict=True):
                keys |= {k.value} if isinstance(k, ast.Constant) else _spread_keys(v)
    return keys


def _is_config(node: ast.AST) -> bool:
    return isinstance(node, ast.Name) and node.id == "config"


def refusal(old: dict, new: dict, tmp_path: Path) -> str:
    """What :func:`check_config` says of a folder recording ``old`` resumed with ``new`` ("" if resumed)."""
    (tmp_path / "config.json").write_text(json.dumps(old))
    try:
        check_config(tmp_path, new)
    except LiteLVLMError as e:
        return str(e)
    return ""


@pytest.mark.parametrize("command", list(RESUMING))
def test_a_refusal_names_as_flags_only_the_commands_options(command, tmp_path):
    mine = options(command)
    # its options dataclass's fields (config.json records them by these names) and the rest it records
    recorded = {f.name for f in fields(importlib.import_module(COMMANDS[command][0]).ARGS)}
    recorded |= recorded_keys(RESUMING[command])
    assert "unbatched" in recorded or command not in ("eval-grounding", "eval-video")
    facts = recorded - mine - set(NOT_COMPARED)
    uncovered = facts - set(RECORDED_FACTS)
    assert not uncovered, f"{command} records {sorted(uncovered)}: name them in RECORDED_FACTS (or leave " \
                          "them out of the comparison in NOT_COMPARED, where derived from the options)"
    assert not set(RECORDED_FACTS) & mine, "a recorded fact that is an option of the command"
    for key in sorted((recorded | mine) - {"paths"}):   # the path options are compared as typed here
        for old, new in (({key: 1}, {key: 2}), ({key: 1}, {}), ({}, {key: 2})):
            said = refusal(old, new, tmp_path)
            flags = set(re.findall(r"(?<![\w-])--([a-z][a-z0-9-]*)", said))
            assert {f.replace("-", "_") for f in flags} <= mine, (command, key, said)
            if key in facts and said:
                assert f"recorded {key} (" in said, (key, said)


def test_unbatched_and_the_timing_caveat_are_not_compared(tmp_path):
    """``unbatched`` (the methods ``--batch-size`` ran at batch 1) follows from ``--methods``,
    ``--batch-size`` and ``--model``, which are compared; a busy machine (``busy``) changes no part."""
    assert "unbatched" in NOT_COMPARED and TIMING_KEY in NOT_COMPARED
    old = {"model": "m", "batch_size": 8, "unbatched": {"fastv": "no batched forward"}, TIMING_KEY: "busy"}
    assert refusal(old, {"model": "m", "batch_size": 8}, tmp_path) == ""


def test_a_recorded_fact_is_named_as_what_it_is(tmp_path):
    said = refusal({"model": "m", "model_dtype": "float32"}, {"model": "m", "model_dtype": "bfloat16"},
                   tmp_path)
    assert "(differs in: the recorded model_dtype (" in said and "--model-dtype" not in said, said


def test_the_commands_that_never_compare_their_config_name_options_only():
    for command in ("reversal", "sink", "retention"):   # check_same_model: --model, --backend
        assert {"model", "backend"} <= options(command), command
