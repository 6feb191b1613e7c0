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
  resumes, finished parts in the one format of :mod:`analysis.common.runs.parts`;
* its figures: one figure set in ``analysis/<study>/figure_set.py`` whose ``read`` loads the results and
  whose ``draw`` plots them with ``analysis/<study>/plots.py``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from litelvlm.cli_args import check_declared, from_namespace
from litelvlm.errors import LiteLVLMError
from litelvlm.registry.families import image_resize_record
from litelvlm.runs.records import read_record
from litelvlm.runs.run_owner import check_config_fields, overwriting
from litelvlm.runs.transaction import current


def read_json(path: str | Path) -> Any:
    """The JSON content of ``path``; a truncated or garbled file is a LiteLVLMError naming it."""
    path = Path(path)
    try:
        return json.loads(current(path).read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise LiteLVLMError(f"{path} is not valid JSON (truncated or partial copy?): {e}") from None
    except OSError as e:   # a folder where the file should be, a broken link, no permission
        raise LiteLVLMError(f"{path} cannot be read ({e.strerror or e})") from None


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
#: options holding paths: config.json keeps them as typed and, under ``paths``, portably
PATH_OPTIONS = ("refer_dir", "image_dir", "coco_instances", "expressions", "data", "video_dir")
#: what the studies record in config.json beside their options (``analysis/<study>/compute.py``), compared
#: when a run resumes: key -> what it is; a refusal names it as such, never as a flag (there is no
#: ``--model-dtype``)
RECORDED_FACTS: dict[str, str] = {
    "images": "the number of images", "model_dtype": "the dtype the model loaded in",
    "numerics": "the arithmetic the model ran", "seg_token_id": "the [SEG] token's id",
    "clip_weights": "the hash of the CLIP's weights", "paired_clip": "the paired CLIP",
    "clip_signals": "the CLIP-side signals scored", "ks": "the token counts the overlaps are measured at",
    "llm_layers": "the LLM's layer count", "llm_heads": "the LLM's attention head count",
    "num_visual_tokens": "the model's visual token count", "num_visual": "the image's visual token count",
    "family": "the model family", "budget_reading": "what a per-frame budget means on the family",
    "video_pruning": "how the family prunes a video", "propagation": "how the masks propagate over frames",
    "note": "the note on the weights"}
#: recorded facts that follow from options which are compared themselves, and are not: ``unbatched``, the
#: methods ``--batch-size`` ran at batch 1 (of ``--methods``, ``--batch-size`` and the ``--model``'s family)
DERIVED_FACTS = ("unbatched", "llm_attn_implementation", "stage_timing")
#: config keys never compared when a run resumes into a folder: the circumstances of a run (its threads, its
#: time, whether the machine was busy while it timed, ``analysis.common.presentation.caveats.TIMING_KEY``),
#: its identity,
#: its paths (compared by their absolute paths) and the :data:`DERIVED_FACTS`
NOT_COMPARED = ("torch_threads", "paths", "run", "layer_dtype_auto", "identity", "busy", *DERIVED_FACTS,
                *PATH_OPTIONS)


def _option(key: str) -> str:
    return "--" + key.replace("_", "-")


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


#: options renamed since older results folders were written: old name -> the names that replaced it
#: (``--limit`` counted images in some studies and sentences in others)
RENAMED_OPTIONS: dict[str, tuple[str, ...]] = {"data": ("refer_dir",),
                                               "limit": ("limit_images", "limit_sentences")}


#: options added since older results folders were written: name -> the value those results were computed with
ADDED_OPTIONS: dict[str, object] = {"quantize": "none", "quantize_backend": "bitsandbytes",
                                    "layer_dtype": "model",
                                     "positions": "official", "compile": False}


def current_names(old: dict, new: dict) -> dict:
    """An older config's options (``old``) under the names the current config (``new``) uses (options added
    since take the value the older results had)."""
    res = dict(old)
    for name, value in ADDED_OPTIONS.items():
        if name in new and name not in res:
            res[name] = value
    for name, successors in RENAMED_OPTIONS.items():
        target = next((s for s in successors if s in new), None)
        if name in res and name not in new and target is not None and target not in res:
            res[target] = res.pop(name)
    if isinstance(res.get("paths"), dict):
        res["paths"] = current_names(res["paths"], new.get("paths") or {})
    return res


def check_config(out: str | Path, config: dict, growable: dict[str, Callable[[Any, Any], bool]] | None = None,
                 ignore: tuple[str, ...] = ()) -> dict | None:
    """Refuse to resume into ``out`` when its config.json records an incompatible configuration (the
    message names the options and recorded facts that differ: :func:`name_options`). Keys in ``growable`` may
    change when their test passes (a larger ``--limit``); path options are compared by their absolute paths.
    Returns the old config."""
    path = Path(out) / "config.json"
    if not os.path.lexists(path):
        return None
    # a link, a folder, an unreadable or garbled file, or fields of the wrong type: one line naming it
    old = check_config_fields(path, read_record(current(path)))
    old = current_names(old, config)
    skip = set(NOT_COMPARED) | set(ignore)
    diff = [k for k in sorted(set(old) | set(config)) if k not in skip and old.get(k) != config.get(k)
            and not (k in (growable or {}) and growable[k](old.get(k), config.get(k)))]
    abs_old = {k: v["absolute"] for k, v in (old.get("paths") or {}).items()}
    abs_new = {k: v["absolute"] for k, v in (config.get("paths") or {}).items()}
    if "paths" in old:
        diff += [k for k in sorted(set(abs_old) | set(abs_new)) if abs_old.get(k) != abs_new.get(k)]
    else:  # a folder written before paths were stored portably: compare them as typed
        diff += [k for k in PATH_OPTIONS if k not in ignore and old.get(k) != config.get(k)]
    if diff:
        raise LiteLVLMError(f"{out} holds results of a different configuration (differs in: "
                            f"{name_options(diff)}); use another --out, or --overwrite to replace it whole")
    return old



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

#: the options that say which model ran: named first when two configurations differ
MODEL_OPTIONS = ("model", "backend", "arch", "family", "clip", "sam", "tokenizer", "quantize", "dtype",
                 "layer_dtype", "model_dtype", "numerics")
#: the options that choose how much is computed (a run grows or shrinks along them): named after those that
#: change the numbers
SELECTION_OPTIONS = ("limit", "limit_images", "limit_sentences", "image_ids", "images", "max_sentences",
                     "methods", "budgets", "anno_sets", "synthetic_videos", "synthetic_frames", "scenes")
#: bookkeeping: where and how a run goes, never what it finds; named last
BOOKKEEPING_OPTIONS = ("out", "cache_dir", "no_cache", "chunk", "device", "threads", "work_dir", "quiet",
                       "no_figures", "progress", "batch_size", "workers", "refer_dir", "image_dir",
                       "coco_instances", "expressions", "data", "video_dir")


def option_rank(key: str) -> tuple[int, str]:
    """Where an option stands when a refusal names the options two configurations differ in: the model first,
    then the options that change the numbers, then the selection (limits, ids, methods, budgets), then
    bookkeeping (folders, device, chunking); alphabetical within each."""
    tier = (0 if key in MODEL_OPTIONS else 2 if key in SELECTION_OPTIONS else 3 if key in BOOKKEEPING_OPTIONS
            else 1)
    return tier, key


def name_key(key: str) -> str:
    """A key of config.json as a refusal names it: an option as its flag (``--limit-images``), a recorded fact
    as what it is (:data:`RECORDED_FACTS`: ``the recorded model_dtype (the dtype the model loaded in)``)."""
    return f"the recorded {key} ({RECORDED_FACTS[key]})" if key in RECORDED_FACTS else _option(key)


def name_options(keys: list[str], most: int = 3) -> str:
    """The ``most`` keys of ``keys`` that differ most (:func:`option_rank`), options as flags and recorded
    facts as what they are (:func:`name_key`), then ``and N more``."""
    ranked = [name_key(k) for k in sorted(dict.fromkeys(keys), key=option_rank)]
    return ", ".join(ranked[:most]) + (f" and {len(ranked) - most} more" if len(ranked) > most else "")


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
    diff = [flag for flag, key, new in (("--model", "model", model), ("--backend", "backend", backend))
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
