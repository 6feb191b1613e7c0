"""The anatomy every study shares, as a protocol its ``command`` module satisfies (checked by the tests).

A study is a package ``analysis/<study>/`` without import circles: its light ``options`` module (no torch,
no pandas: a bad option is refused at once) defines the options and their checks and imports nothing of
the study's heavy modules; its ``command`` module (the subcommand's entry in ``analysis.commands``)
imports ``options`` and provides:

* ``ARGS``: its options dataclass (fields made with ``litelvlm.cli_args.arg``; one per command-line
  option, the same name meaning the same thing in every study);
* ``add_arguments(parser)`` and ``run(args) -> int``: the ``litelvlm`` subcommand, and the one way to run
  the study from code: ``run`` takes the dataclass (the command line's namespace is turned into one by
  :func:`as_args`), checks it, then imports the study's heavy ``compute`` module and runs it;
* its results on disk: tables written atomically, ``config.json`` with its options, and, where it
  resumes, finished parts in the one format of :mod:`litelvlm.runs.parts`;
* its figures: one figure set in ``analysis/<study>/figure_set.py`` whose ``read`` loads the results and
  whose ``draw`` plots them with ``analysis/<study>/plots.py``.
"""

from __future__ import annotations

import argparse
import os
import subprocess
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from litelvlm.cli_args import check_declared, from_namespace
from litelvlm.errors import LiteLVLMError
from litelvlm.registry.families import image_resize_record
from litelvlm.runs.io import read_json
from litelvlm.runs.resume import PATH_OPTIONS, current_names, name_options
from litelvlm.runs.run_owner import overwriting


@runtime_checkable
class Study(Protocol):
    """What ``analysis/<study>/command.py`` provides."""

    ARGS: type

    def add_arguments(self, parser: argparse.ArgumentParser) -> None: ...

    def run(self, args: argparse.Namespace) -> int: ...


#: study subcommand -> its figure set (None: it draws its own); the module is the subcommand's
#: entry in ``analysis.commands.COMMANDS``
STUDIES: dict[str, str | None] = {
    "reversal": "reversal",
    "sink": "sink",
    "retention": "retention",
    "eval-grounding": "grounding",
    "importance": "importance",
    "efficiency": "efficiency",
    "validate": None,
    "positions": "positions",
    "demo": None,
    "eval-video": "video",
    "plan": None,
    "tables": None,
}


def as_args(cls: type, args: Any) -> Any:
    """``args`` as the options dataclass ``cls``: itself when it is one (a run from code; what its options
    declare checked here, as the parser checks the command line's), else built from the argparse namespace
    of the command line (``litelvlm.cli`` calls ``run`` with one)."""
    if isinstance(args, cls):
        check_declared(args)
        return args
    if not isinstance(args, argparse.Namespace):
        raise TypeError(f"expected {cls.__name__} or an argparse.Namespace, got {type(args).__name__}")

    return from_namespace(cls, args)


# -- the results folder a run owns ------------------------------------------------------------------

def llm_attn_record(lm) -> dict:
    """``{"llm_attn_implementation": ...}``: the attention kernel the LLM's config names, as transformers runs
    it (``litelvlm.llm.flash``'s registered name for ``--attn flash``); not compared on resume (derived from
    ``--attn``)."""
    name = getattr(getattr(lm, "config", None), "_attn_implementation", None)
    return {} if name is None else {"llm_attn_implementation": str(name)}


def portable_paths(options: dict, out: str | Path) -> dict:
    """``{option: {"typed", "absolute", "from_results"}}`` for every path option that is set, so that
    a results folder opens from any working directory, or after being moved next to its data."""
    res = {}
    out_abs = Path(os.path.abspath(out))
    for key in PATH_OPTIONS:
        value = options.get(key)
        if value in (None, ""):
            continue
        absolute = os.path.abspath(value)
        res[key] = {"typed": str(value), "absolute": absolute,
                    "from_results": os.path.relpath(absolute, out_abs)}
    return res


def resolve_config_path(config: dict, key: str, results_dir: str | Path) -> str | None:
    """A path option of a results folder's config.json, resolved: as typed (from the working
    directory), then absolute, then relative to the results folder; the first that exists."""
    entry = (config.get("paths") or {}).get(key)
    typed = (config.get("args") or config).get(key)
    if entry is None:
        if typed in (None, "") or os.path.isabs(typed) or os.path.exists(typed):
            return typed
        beside = Path(results_dir) / typed
        return str(beside) if beside.exists() else typed
    for candidate in (entry["typed"], entry["absolute"], str(Path(results_dir) / entry["from_results"])):
        if os.path.exists(candidate):
            return candidate
    return entry["typed"]



#: the options a resumable command compares before anything loads (recorded as given, never grown)
EARLY_OPTIONS = ("model", "backend", "seed", "dtype", "quantize", "protocol")


def check_early(out: str | Path, options: dict) -> None:
    """Refuse, before torch is imported, a folder whose recorded configuration (``parts/config.json``, else
    ``config.json``) differs from ``options`` (the command's options as given) in one of
    :data:`EARLY_OPTIONS`: the refusal :func:`check_config` makes after the model loads, made at once. Nothing
    with ``--overwrite``."""
    out = Path(out)
    path = out / "parts" / "config.json"
    path = path if path.is_file() else out / "config.json"
    if overwriting(out) or not path.is_file():
        return
    old = read_json(path)
    if not isinstance(old, dict):
        return
    old = current_names(old, options)
    diff = [k for k in EARLY_OPTIONS if k in old and k in options and old[k] != options[k]]
    # recorded for a family with a resize of its own only:
    if "image_resize" in options and "model" in options:
        # a folder of that family without the record is older (the PIL resize): refused
        record = image_resize_record(options["image_resize"], options["model"])
        diff += [k for k, v in record.items() if old.get(k) != v]
    if diff:
        raise LiteLVLMError(f"{out} holds results of a different configuration (differs in: "
                            f"{name_options(diff)}); use another --out, or --overwrite to replace it whole")


def check_same_model(out: str | Path, model: str | None, backend: str | None = None) -> None:
    """Refuse to write into ``out`` when its config.json records results of another model (``--model``, or the
    same string through another ``--backend``): a study that recomputes all its tables (``reversal``,
    ``sink``, ``retention``) would otherwise replace that model's results without a word."""
    path = Path(out) / "config.json"
    if not path.is_file() or overwriting(out):   # --overwrite: the other model's results are replaced whole
        return
    old = read_json(path)
    if not isinstance(old, dict):
        raise LiteLVLMError(f"{path} is not a config.json of this project")
    args = old["args"] if isinstance(old.get("args"), dict) else old
    # the model as its text (a resolved model is recorded as its text)
    diff = [flag for flag, key, new in (("--model", "model", None if model is None else str(model)),
                                        ("--backend", "backend", backend))
            if key in args and args[key] != new]
    if diff:
        raise LiteLVLMError(f"{out} holds results of model {args.get('model')!r}"
                            + (f" (backend {args.get('backend')!r})" if "--backend" in diff else "")
                            + f" (differs in: {', '.join(diff)}); use another --out, or --overwrite to "
                            "replace it whole")


def git_commit(root: str | Path | None = None) -> str | None:
    """The commit of the checkout this project runs from (``+dirty`` with uncommitted changes to tracked
    files); None for an installed copy or where git is missing."""
    root = Path(root) if root is not None else Path(__file__).resolve().parents[3]
    if not (root / ".git").exists():
        return None
    try:
        head = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True,
                              timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return head + ("+dirty" if dirty else "")
