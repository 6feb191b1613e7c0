"""The JSON files of a referring-video layout (:mod:`litelvlm.video.datasets`): a split's
``meta_expressions.json`` and MeViS's ``mask_dict.json``, read here, and each meta file checked for what the
loaders read. A missing file, a folder in its place, a file that cannot be read, garbled, truncated or not
UTF-8 JSON, or one of the wrong schema is a :class:`~litelvlm.errors.LiteLVLMError` naming it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..errors import LiteLVLMError


def read_json(path: Path, what: str) -> Any:
    """The JSON value of the UTF-8 file ``path``; a problem is a :class:`LiteLVLMError` naming it as
    ``what`` (``"meta expressions file"``)."""
    if path.is_dir():
        raise LiteLVLMError(f"{what} {str(path)!r} is a folder, not a file")
    if not path.is_file():
        raise LiteLVLMError(f"{what} {str(path)!r} does not exist (a partial download?)")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise LiteLVLMError(f"{what} {str(path)!r} could not be read: {e.strerror or e}") from e
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise LiteLVLMError(f"{what} {str(path)!r} could not be read: {e}") from e


def load_meta_expressions(path: str | Path) -> dict[str, dict]:
    """The ``videos`` of a ``meta_expressions.json``, each checked for a ``frames`` list of names and an
    ``expressions`` mapping of ``{"exp": ...}`` entries; a malformed file is a :class:`LiteLVLMError`."""
    path = Path(path)
    data = read_json(path, "meta expressions file")
    videos = data.get("videos") if isinstance(data, dict) else None
    if not isinstance(videos, dict):
        raise LiteLVLMError(f"meta expressions file {str(path)!r} has no 'videos' mapping")
    for video, entry in videos.items():
        frames = entry.get("frames") if isinstance(entry, dict) else None
        exps = entry.get("expressions") if isinstance(entry, dict) else None
        if not isinstance(frames, list) or not all(isinstance(f, str)
                                                   for f in frames) or not isinstance(exps, dict):
            raise LiteLVLMError(f"meta expressions file {str(path)!r}: video {video!r} needs a 'frames' list "
                                "of names and an 'expressions' mapping")
        for exp_id, exp in exps.items():
            if not isinstance(exp, dict) or not isinstance(exp.get("exp"), str):
                raise LiteLVLMError(f"meta expressions file {str(path)!r}: video {video!r}, expression "
                                    f"{exp_id!r} has no 'exp' sentence")
    return videos


def meta_ids(path: Path, video: str, exp_id: str, exp: dict, key: str, required: bool, many: bool) -> tuple:
    """``exp[key]`` as a tuple (one id, or a list of ids where ``many``); ``()`` when absent and not
    ``required``; a :class:`LiteLVLMError` naming the file when required and absent or malformed."""
    if key not in exp and not required:
        return ()
    value = exp.get(key)
    try:
        if many and not isinstance(value, list):
            raise TypeError
        values = tuple(value) if many else (value,)
        return tuple(str(v) for v in values) if key == "anno_id" else tuple(int(v) for v in values)
    except (TypeError, ValueError):
        what = "a list of ids" if many else "an object id"
        raise LiteLVLMError(f"meta expressions file {str(path)!r}: video {video!r}, expression {exp_id!r} "
                            f"needs {key!r} as {what}; got {value!r}") from None


__all__ = ["load_meta_expressions", "meta_ids", "read_json"]
