"""What a run resumes from: the configuration a folder's finished parts were computed with, compared with
this run's (:func:`check_config`, called by :meth:`litelvlm.runs.run_folder.RunFolder.resume`); a refusal
names the options that differ, most telling first (:func:`name_options`)."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..errors import LiteLVLMError
from .records import read_record
from .run_owner import check_config_fields
from .staging import current

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

#: options renamed since older results folders were written: old name -> the names that replaced it
#: (``--limit`` counted images in some studies and sentences in others)
RENAMED_OPTIONS: dict[str, tuple[str, ...]] = {"data": ("refer_dir",),
                                               "limit": ("limit_images", "limit_sentences")}


#: options added since older results folders were written: name -> the value those results were computed with
ADDED_OPTIONS: dict[str, object] = {"quantize": "none", "quantize_backend": "bitsandbytes",
                                    "layer_dtype": "model", "positions": "official", "compile": False,
                                    # IPCV's options with a default (a folder from before IPCV holds none of
                                    # its results): the defaults
                                    "ipcv_llm_layer": 3, "ipcv_top_k": 10}
#: fields of the recorded ``numerics`` added since: name -> the value those results were computed with
#: (``clip_softmax``: CLIP's eager attention was transformers 5's; :func:`older_numerics`); each is also an
#: option, which an older folder takes as given (its effect is compared through ``numerics``)
ADDED_NUMERICS: dict[str, object] = {"clip_softmax": "float32"}


def older_numerics(old: dict, new: dict, model_dtype: object = None) -> dict:
    """An older run's recorded numerics (``old``) with the fields added since (:data:`ADDED_NUMERICS`): the
    value it computed with, or the current one (``new``'s) where the two compute the same: ``clip_softmax``
    outside eager attention (it chooses CLIP's eager kernel only) and in a float32 model (the same bits at
    CLIP's head sizes, 16 and 64: docs/fidelity.md)."""
    res = dict(old)
    for name, value in ADDED_NUMERICS.items():
        if name in new and name not in res:
            same = name == "clip_softmax" and (res.get("attn") != "eager" or model_dtype == "float32")
            res[name] = new[name] if same else value
    return res


def current_names(old: dict, new: dict) -> dict:
    """An older config's options (``old``) under the names the current config (``new``) uses (options added
    since take the value the older results had)."""
    res = dict(old)
    for name, value in ADDED_OPTIONS.items():
        if name in new and name not in res:
            res[name] = value
    for name in ADDED_NUMERICS:   # the option as given: the numerics it chose are compared
        if name in new and name not in res and "numerics" in res:
            res[name] = new[name]
    for name, successors in RENAMED_OPTIONS.items():
        target = next((s for s in successors if s in new), None)
        if name in res and name not in new and target is not None and target not in res:
            res[target] = res.pop(name)
    if isinstance(res.get("numerics"), dict) and isinstance(new.get("numerics"), dict):
        res["numerics"] = older_numerics(res["numerics"], new["numerics"], res.get("model_dtype"))
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
