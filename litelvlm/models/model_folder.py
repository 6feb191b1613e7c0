"""What a model folder must hold before a loader reads it (every family, Qwen2.5-VL, CLIP): a config file that
is a JSON object whose keys have the types the loader reads them as, and the tokenizer and processor files the
family loads.

:func:`check_model_folder` reads the config (:func:`read_config`), checks it against the family's schema
(a :class:`FolderSchema`: a family's own, in its package, or one of :data:`SCHEMAS`; :func:`check_types`) and
looks for its files (:func:`require_files`). Each failure is one :class:`~litelvlm.errors.LiteLVLMError`
naming the folder, the file or key, and the cause (the key's expected type; the missing files). The loaders
call it first, before transformers, open_clip or torch read anything, so a broken folder is refused at load,
not by a traceback or a token-count mismatch later. A key the folder leaves out is the loader's to default or
refuse. This module imports nothing heavy.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import LiteLVLMError
from .model_spec import ModelSpec

#: how an expected type reads in an error
_WORDS = {"int": "an integer", "float": "a number", "str": "a string", "bool": "true or false",
          "dict": "an object", "list": "a list", "null": "null", "int list": "a list of integers",
          "float list": "a list of numbers", "str list": "a list of strings"}
#: the JSON name of a Python value's type, as an error says what a key holds
_JSON = {bool: "true or false", int: "an integer", float: "a number", str: "a string", list: "a list",
         dict: "an object", type(None): "null"}


def _is(value: Any, kind: str) -> bool:
    """Whether ``value`` (read from JSON) is of ``kind`` (a key of :data:`_WORDS`); a number accepts an
    integer."""
    if kind.endswith(" list"):
        return isinstance(value, list) and all(_is(v, kind[:-5]) for v in value)
    if kind in ("int", "float") and isinstance(value, bool):
        return False
    return isinstance(value, {"int": int, "float": (int, float), "str": str, "bool": bool, "dict": dict,
                              "list": list, "null": type(None)}[kind])


def _expected(spec: str) -> str:
    return " or ".join(_WORDS[k] for k in spec.split("|"))


def read_config(folder: str | Path, name: str = "config.json") -> dict:
    """The JSON object in ``folder/name``; absent, unreadable or not an object: a :class:`LiteLVLMError`."""
    path = Path(folder) / name
    if not path.is_file():
        raise LiteLVLMError(f"model folder {str(folder)!r} has no {name}")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as e:
        raise LiteLVLMError(f"model folder {str(folder)!r}: {name} could not be read ({e})") from None
    if not isinstance(data, dict):
        raise LiteLVLMError(f"model folder {str(folder)!r}: {name} holds {_JSON.get(type(data), 'a value')}, "
                            "not a JSON object of settings")
    return data


def check_types(cfg: dict, schema: dict[str, str], where: str) -> None:
    """Each key of ``schema`` that ``cfg`` holds (``a.b``: key ``b`` of the object under ``a``) has the type
    the schema gives (``int``, ``float``, ``str``, ``bool``, ``dict``, ``list``, ``null``, ``int list``, ...
    joined by ``|``); else a :class:`LiteLVLMError` naming ``where``, the key and the expected type."""
    for key, spec in schema.items():
        node: Any = cfg
        *parents, last = key.split(".")
        for p in parents:
            node = node.get(p) if isinstance(node, dict) else None
        if not isinstance(node, dict) or last not in node:
            continue
        value = node[last]
        if not any(_is(value, kind) for kind in spec.split("|")):
            shown = repr(value) if len(repr(value)) <= 40 else repr(value)[:37] + "..."
            raise LiteLVLMError(f"{where}: key {key!r} must be {_expected(spec)}, got "
                                f"{_JSON.get(type(value), 'a value')} ({shown})")


def require_files(folder: str | Path, what: str, alternatives: list[tuple[str, ...]]) -> None:
    """``folder`` holds every file of at least one of ``alternatives``; else a :class:`LiteLVLMError` naming
    the folder, ``what`` the files are for and the files missing (of the alternative closest to complete)."""
    folder = Path(folder)
    if any(all((folder / f).is_file() for f in files) for files in alternatives):
        return
    best = max(alternatives, key=lambda files: sum((folder / f).is_file() for f in files))
    missing = [f for f in best if not (folder / f).is_file()]
    others = [" + ".join(files) for files in alternatives if files != best]
    raise LiteLVLMError(f"model folder {str(folder)!r} lacks the {what} file(s) {', '.join(missing)}"
                        + (f" (or {' / '.join(others)})" if others else "") + " (a partial download?)")


def prefixed(prefix: str, schema: dict[str, str]) -> dict[str, str]:
    return {f"{prefix}{k}": v for k, v in schema.items()}


#: a decoder's sizes, as Llama, Phi-3 and Qwen2 configs name them
LLM_SCHEMA = {"architectures": "str list", "model_type": "str", "hidden_size": "int",
              "intermediate_size": "int",
        "num_hidden_layers": "int", "num_attention_heads": "int", "num_key_value_heads": "int|null",
        "vocab_size": "int", "max_position_embeddings": "int", "rms_norm_eps": "float", "rope_theta": "float",
        "hidden_act": "str", "tie_word_embeddings": "bool", "bos_token_id": "int|int list|null",
        "eos_token_id": "int|int list|null", "pad_token_id": "int|null"}
#: Qwen2.5-VL's ``config.json`` (the released flat keys, or transformers 5's ``text_config``), as transformers
#: reads it
QWEN_SCHEMA = {**LLM_SCHEMA, "sliding_window": "int|null", "max_window_layers": "int",
               "use_sliding_window": "bool",
         "image_token_id": "int", "video_token_id": "int", "vision_start_token_id": "int",
         "vision_end_token_id": "int", "rope_scaling": "dict|null", "rope_scaling.mrope_section": "int list",
         "text_config": "dict", **prefixed("text_config.", LLM_SCHEMA), "vision_config": "dict",
         **prefixed("vision_config.", {k: "int" for k in (
             "depth", "hidden_size", "intermediate_size", "num_heads", "in_chans", "out_hidden_size",
             "patch_size", "spatial_merge_size", "spatial_patch_size", "temporal_patch_size", "window_size",
             "tokens_per_second")}),
         "vision_config.fullatt_block_indexes": "int list", "vision_config.hidden_act": "str"}
_CLIP_TOWER = {k: "int"
               for k in ("hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
                                  "projection_dim", "image_size", "patch_size", "num_channels", "vocab_size",
                                  "max_position_embeddings")}
_CLIP_TOWER.update(layer_norm_eps="float", hidden_act="str")
_OPEN_CLIP_TOWER = {"width": "int", "layers": "int|int list", "heads": "int", "head_width": "int",
                    "patch_size": "int", "image_size": "int|int list", "context_length": "int",
                    "vocab_size": "int", "mlp_ratio": "float"}

@dataclass(frozen=True)
class FolderSchema:
    """What a model folder holds: its config file, the config's keys and their types (``a.b``: key ``b`` of
    the object under ``a``), and [(what the files are for, alternatives: every file of one of them is
    needed)]."""

    config: str
    keys: dict[str, str]
    files: list[tuple[str, list[tuple[str, ...]]]] = field(default_factory=list)


#: the image processor's settings: transformers 5's ``ProcessorMixin.save_pretrained`` writes them under
#: ``image_processor`` in ``processor_config.json``; ``ImageProcessor.save_pretrained`` and the hub's older
#: folders in ``preprocessor_config.json`` (transformers loads either)
IMAGE_PROCESSOR_FILES = ("image processor", [("preprocessor_config.json",), ("processor_config.json",)])
QWEN_FILES = [("tokenizer", [("tokenizer.json",), ("vocab.json", "merges.txt", "tokenizer_config.json")]),
              IMAGE_PROCESSOR_FILES]
#: a tokenizer of LLaMA's or Phi-3's layout
TOKENIZER_FILES = [("tokenizer", [("tokenizer.json",), ("tokenizer.model",)])]
#: the shared schemas by name (a family's own schema sits in its package)
SCHEMAS: dict[str, FolderSchema] = {
    "qwen": FolderSchema("config.json", QWEN_SCHEMA, QWEN_FILES),
    "clip":
    FolderSchema("config.json", {"architectures": "str list", "model_type": "str", "projection_dim": "int",
                                         "logit_scale_init_value": "float", "text_config": "dict",
                                         "vision_config": "dict", **prefixed("text_config.", _CLIP_TOWER),
                                         **prefixed("vision_config.", _CLIP_TOWER)},
                         [("tokenizer", [("tokenizer.json",), ("vocab.json", "merges.txt")]),
                          IMAGE_PROCESSOR_FILES]),
    "open_clip": FolderSchema("open_clip_config.json", {
        "model_cfg": "dict", "model_cfg.embed_dim": "int", "model_cfg.vision_cfg": "dict",
        "model_cfg.text_cfg": "dict", **prefixed("model_cfg.vision_cfg.", _OPEN_CLIP_TOWER),
        **prefixed("model_cfg.text_cfg.", _OPEN_CLIP_TOWER),
        "preprocess_cfg": "dict", "preprocess_cfg.mean": "float list|float",
        "preprocess_cfg.std": "float list|float"}),
}


def check_model_folder(folder: str | Path, schema: str | FolderSchema, config: dict | None = None) -> dict:
    """The config of a model folder, checked against ``schema`` (a :class:`FolderSchema`, or the name of a
    shared one in :data:`SCHEMAS`): a JSON object, its keys of the types the loader reads, its tokenizer and
    processor files present; ``config``: the folder's config as its resolution read it (not read again)."""
    schema = SCHEMAS[schema] if isinstance(schema, str) else schema
    cfg = read_config(folder, schema.config) if config is None else config
    check_types(cfg, schema.keys, f"model folder {str(folder)!r}: {schema.config}")
    for what, alternatives in schema.files:
        require_files(folder, what, alternatives)
        if (what, alternatives) == IMAGE_PROCESSOR_FILES:
            check_image_processor(folder)
    return cfg


def check_image_processor(folder: str | Path) -> None:
    """A folder whose image-processor settings are only in ``processor_config.json`` holds them there as the
    ``image_processor`` object transformers reads; else a :class:`LiteLVLMError` naming the file."""
    if (Path(folder) / "preprocessor_config.json").is_file():
        return
    settings = read_config(folder, "processor_config.json").get("image_processor")
    if not isinstance(settings, dict):
        raise LiteLVLMError(f"model folder {str(folder)!r}: processor_config.json has no 'image_processor' "
                            "object (it holds "
                            f"{_JSON.get(type(settings), 'a value') if settings is not None else 'none'}) "
                            "and there is no preprocessor_config.json")


# -- a model string's folder, as its resolution checks it (litelvlm.registry.families.resolve): one wording
# -----------
#: the weight files one of which a model folder holds (its loader then reads the format it reads)
WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin",
                "pytorch_model.bin.index.json")


def model_error(model: str, problem: str) -> LiteLVLMError:
    """The one wording of a model string that is refused: ``model 'M': <problem>``."""
    return LiteLVLMError(f"model {str(model)!r}: {problem}")


def no_model_error(model: str, presets: Iterable[str]) -> LiteLVLMError:
    """The error of a string that names neither a random preset (``presets``: their names) nor a folder with
    a config.json: an unknown preset (a random model's name), a folder without config.json, or
    nothing."""
    spec, presets = ModelSpec.of(model), list(presets)
    if Path(spec.folder).is_dir():
        problem = "the folder holds no config.json"
    elif spec.is_random:
        close = difflib.get_close_matches(spec.name, presets, n=2, cutoff=0.6)
        problem = f"no family has the random preset {spec.name!r}" + (
            f" (did you mean {' or '.join(repr(c) for c in close)}?)" if close else "")
    else:
        problem = "no such folder, random preset or released checkpoint"
    return model_error(spec.text, f"{problem} (random presets: {', '.join(p + '[:SEED]' for p in presets)})")


def declared_architectures(model: str, config: dict) -> list[str]:
    """The ``architectures`` a folder's config.json declares (none: empty); anything but a list of strings is
    an error naming the model."""
    declared = config.get("architectures") or []
    if not isinstance(declared, list) or not all(isinstance(a, str) for a in declared):
        raise model_error(model, f"its config.json's 'architectures' must be a list of strings, got "
                                 f"{declared!r}")
    return declared


def architecture_error(model: str, declared: Sequence[str], whose: str | None, architectures: Iterable[str],
                       theirs: str | None = None) -> LiteLVLMError:
    """The error of a folder that declares none of ``architectures``, those of ``whose`` (None: of any
    family); ``theirs``: whose architectures it declares, where that is known."""
    known = ", ".join(architectures)
    if whose is None:
        return model_error(model, f"its config.json declares architectures {list(declared)}; no family reads "
                                  f"them (known: {known})")
    return model_error(model, f"its config.json declares architectures {list(declared)}"
                              + (f" ({theirs}'s)" if theirs else "") + f", not {whose}'s ({known})")


def require_weights(model: str, folder: str | Path) -> None:
    """``folder`` holds one of :data:`WEIGHT_FILES`; else an error naming the model."""
    if not any((Path(folder) / f).is_file() for f in WEIGHT_FILES):
        raise model_error(model, "the folder holds no weights (model.safetensors, pytorch_model.bin or the "
                                 "index of their shards)")


#: a weight format's single file (its shards' index is ``<file>.index.json``)
WEIGHT_FORMATS = {"safetensors": "model.safetensors", "bin": "pytorch_model.bin"}


def weight_files(folder: str | Path, formats: Sequence[str] = ("safetensors",)) -> list[Path]:
    """The weight files of a checkpoint folder in one of ``formats`` (:data:`WEIGHT_FORMATS`): the shards an
    index lists (the first format's index first), else the single file; no weights, an index that cannot be
    read or a missing shard is one line naming the folder, in the words of :func:`require_weights`."""
    folder = Path(folder)
    for index in (folder / f"{WEIGHT_FORMATS[f]}.index.json" for f in formats):
        if index.exists():
            try:
                files = sorted(set(json.loads(index.read_text())["weight_map"].values()))
            except (ValueError, KeyError, AttributeError, TypeError) as e:
                raise LiteLVLMError(f"{index} is not a valid shard index ({e})") from e
            missing = [str(folder / f) for f in files if not (folder / f).exists()]
            if missing:
                raise LiteLVLMError(f"checkpoint shard(s) listed in {index} are missing: "
                                    f"{', '.join(missing)}")
            return [folder / f for f in files]
    for single in (folder / WEIGHT_FORMATS[f] for f in formats):
        if single.exists():
            return [single]
    expected = " or ".join(WEIGHT_FORMATS[f] for f in formats)
    raise LiteLVLMError(f"model folder {str(folder)!r}: the folder holds no weights ({expected} or the index "
                        "of its shards)")
