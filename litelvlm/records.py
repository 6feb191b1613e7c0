"""Records of an earlier run (its config.json, its run record, a commit journal): read with one error for a
damaged one, naming the file and the way out."""

from __future__ import annotations

import json
import os
from pathlib import Path

from .errors import LiteLVLMError

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


__all__ = ["WAY_OUT", "damaged", "read_record"]
