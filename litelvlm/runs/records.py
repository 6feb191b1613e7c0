"""Records of an earlier run (its config.json, its run record, a commit journal): read with one error for a
damaged one, naming the file and the way out."""

from __future__ import annotations

import json
import os
from pathlib import Path

from ..errors import LiteLVLMError

#: the way out every refusal names
WAY_OUT = "use another --out, or --overwrite to replace it whole"


def damaged(path: str | os.PathLike, why: str) -> LiteLVLMError:
    """The one error for a damaged earlier result: the file, what is wrong, and the way out."""
    return LiteLVLMError(f"{path} {why}: an earlier result is damaged; repair or remove it, or {WAY_OUT}")


def read_record(path: str | os.PathLike) -> object:
    """The JSON content of a record file of an earlier run; a folder, a broken link, an unreadable or garbled
    file is a LiteLVLMError naming it."""
    path = Path(path)
    if path.is_symlink():   # its run wrote a file: a link (broken or not) is not that file
        raise damaged(path,
                      "is a broken symbolic link" if not path.exists()
                      else "is a link where a file should be")
    if path.is_dir():
        raise damaged(path, "is a folder where a file should be")
    try:
        return json.loads(path.read_bytes().decode("utf-8"))
    except PermissionError:
        raise damaged(path, "cannot be read (permission denied)") from None
    except OSError as e:
        raise damaged(path, f"cannot be read ({e.strerror or e})") from None
    except (UnicodeDecodeError, ValueError):
        raise damaged(path, "is not valid JSON (truncated, garbled or a partial copy)") from None


def plain_name(out: str | os.PathLike, rel: object, record: str | os.PathLike, top: bool = False) -> Path:
    """``out / rel`` when the name ``rel`` that the record file ``record`` holds is a plain relative name
    inside ``out`` (no absolute path, no ``..`` or ``.`` part, no empty part, no link on the way that leads
    out of ``out``; ``top``: one entry, itself no link leading out); a LiteLVLMError naming the record as
    damaged otherwise. A record is data: it never names where a file is moved, read or deleted outside its
    folder."""
    if not isinstance(rel, str) or not rel or "\0" in rel:
        raise damaged(record, f"names {rel!r}, which is not a file name")
    parts = rel.split("/")
    if rel.startswith("/") or any(part in ("", ".", "..") for part in parts) or (top and len(parts) > 1):
        raise damaged(record, f"names {rel!r}, which is not a plain {'entry' if top else 'path'} inside its "
                              "folder")
    path = Path(out) / rel
    root = os.path.realpath(out)
    parent = os.path.realpath(path if top else path.parent)   # a folder it names: the folder itself too
    if parent != root and not parent.startswith(root + os.sep):
        raise damaged(record, f"names {rel!r}, which leads out of its folder through a link")
    return path


def inside(out: str | os.PathLike, path: str | os.PathLike) -> Path:
    """``path`` when it lies inside the folder ``out`` (its parent resolved through links; the entry itself
    may be a link, which is moved or removed, never followed); a LiteLVLMError otherwise. Every move or
    removal of the run machinery checks its target with it."""
    root = os.path.realpath(out)
    parent = os.path.realpath(Path(path).parent)
    name = Path(path).name
    if name in ("", ".", "..") or (parent != root and not parent.startswith(root + os.sep)):
        raise LiteLVLMError(f"{path} lies outside the folder {out}: this project moves and removes files "
                            f"only "
                            "inside the folder a run owns; nothing was changed there")
    return Path(path)


__all__ = ["WAY_OUT", "damaged", "inside", "plain_name", "read_record"]
