"""Atomic file writes: a result file is either complete or absent, never partial; figure files whose bytes
depend only on the figure (:func:`save_plot`)."""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..errors import LiteLVLMError, storage_errno
from . import staging, transaction


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = _current_umask()


def publish(path: str | os.PathLike) -> None:
    """Give a result file the usual permissions (0666 less the umask); some writers make 0600 files."""
    os.chmod(path, 0o666 & ~_UMASK)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; move it into place only if the block succeeds (a writer's
    error carrying a full disk's errno is an ``OSError`` naming ``path``, whichever library raised it). Inside
    a folder with an open :class:`~litelvlm.runs.transaction.Transaction`, "into place" is its staging
    folder (:func:`~litelvlm.runs.staging.route`), and the file reaches ``path`` when it commits."""
    path = Path(path)
    staged = staging.route(path)
    target = staged[0] / staged[1] if staged is not None else path
    target.parent.mkdir(parents=True, exist_ok=True)
    # named before it is made: a stop landing the moment it exists finds it to remove (finally)
    tmp = target.parent / f".{target.name}.{os.getpid()}-{secrets.token_hex(6)}{transaction.TMP_SUFFIX}"
    try:
        os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        yield tmp
        if tmp.exists():  # mkstemp makes 0600 files
            publish(tmp)
        transaction.replace(tmp, target)
        if staged is not None:
            staging.record(*staged)
    except OSError as e:
        # a full disk met by a writer that names no file: name it
        if e.filename is None and e.errno is not None:
            raise OSError(e.errno, e.strerror or str(e), str(path)) from e
        raise
    except Exception as e:
        # a full disk met by a writer whose error is no OSError (safetensors' SafetensorError): name it
        if isinstance(e, LiteLVLMError) or (code := storage_errno(e)) is None:
            raise
        raise OSError(code, os.strerror(code), str(path)) from e
    finally:
        if tmp.exists():
            tmp.unlink()


def remove_result(path: str | os.PathLike) -> None:
    """Remove an earlier run's result file: when the open transaction of its folder commits (a failed or
    stopped run leaves it in place, beside the tables that name it), else at once."""
    found = staging.open_stage(path)
    if found is None:
        Path(path).unlink(missing_ok=True)
    else:
        staging.record(found[1], Path(os.path.abspath(path)).relative_to(found[0]).as_posix(), "remove")


def copy_file(src: str | os.PathLike, dst: str | os.PathLike) -> None:
    """Copy the file ``src`` to ``dst`` atomically."""
    with atomic_path(dst) as tmp:
        shutil.copyfile(src, tmp)


def write_text(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_json(path: str | os.PathLike, obj: Any) -> None:
    """Write ``obj`` as indented, key-sorted JSON, atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")


def write_parquet(path: str | os.PathLike, df) -> None:
    """Write a DataFrame to parquet atomically and deterministically (no pandas index, fixed row groups)."""
    with atomic_path(path) as tmp:
        df.to_parquet(tmp, index=False, engine="pyarrow", compression="zstd")


def write_csv(path: str | os.PathLike, df) -> None:
    """Write a DataFrame to CSV atomically."""
    with atomic_path(path) as tmp:
        df.to_csv(tmp, index=False)


#: Metadata of every saved PDF/PNG: fixed, date-free, version-free (matplotlib would stamp its version into a
#: PNG's ``Software`` chunk and the date into a PDF), so the same figure gives the same bytes on any day and
#: with any matplotlib release.
PDF_METADATA = {"Creator": "litelvlm", "Producer": "litelvlm", "CreationDate": None, "ModDate": None}
PNG_METADATA = {"Software": "litelvlm"}
#: the file formats a figure is saved in
FIGURE_FORMATS = ("pdf", "png")


def save_plot(fig, path: str | os.PathLike, fmt: str = "png", **savefig_kwargs) -> Path:
    """The one way a matplotlib figure is written to a file: ``fig.savefig`` atomically, with the fixed
    :data:`PDF_METADATA` / :data:`PNG_METADATA` (``fmt``: ``pdf`` or ``png``); returns ``path``."""
    if fmt not in FIGURE_FORMATS:
        raise ValueError(f"unsupported figure format {fmt!r}; use pdf or png")
    meta = PDF_METADATA if fmt == "pdf" else PNG_METADATA
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format=fmt, metadata=dict(meta), **savefig_kwargs)
    return Path(path)


def shard_by_size(sizes: dict[str, int], max_shard_bytes: int | None) -> list[list[str]]:
    """Checkpoint keys grouped one group per shard file, in the given order: consecutive groups of at most
    ``max_shard_bytes`` (``sizes``: bytes per key; a larger single tensor gets its own file); one group
    without a limit."""
    if max_shard_bytes is None:
        return [list(sizes)]
    groups: list[list[str]] = [[]]
    size = 0
    for k, nbytes in sizes.items():
        if groups[-1] and size + nbytes > max_shard_bytes:
            groups.append([])
            size = 0
        groups[-1].append(k)
        size += nbytes
    return groups


def read_json_file(path: str | os.PathLike, what: str) -> Any:
    """Parse a JSON file read as bytes (UTF-8, or UTF-16/32 by their byte-order marks, as ``json.load`` of a
    file opened ``"rb"`` reads it); an unreadable, undecodable or malformed file is a ``LiteLVLMError`` of one
    line naming it as ``what`` (``"instances file"``) and the problem."""
    try:
        data = Path(path).read_bytes()
    except OSError as e:
        raise LiteLVLMError(f"{what} {str(path)!r} could not be read: {e}") from e
    try:
        return json.loads(data)
    except UnicodeDecodeError as e:
        raise LiteLVLMError(f"{what} {str(path)!r} is not {e.encoding.upper()} text: byte "
                            f"{e.object[e.start]:#04x} at offset {e.start} cannot be decoded ({e.reason}); "
                            "JSON files must be UTF-8") from None
    except json.JSONDecodeError as e:
        raise LiteLVLMError(f"{what} {str(path)!r} could not be read: {e}") from e


def read_json(path: str | os.PathLike) -> Any:
    """The JSON content of ``path``; a truncated or garbled file is a LiteLVLMError naming it."""
    path = Path(path)
    try:
        return json.loads(staging.current(path).read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise LiteLVLMError(f"{path} is not valid JSON (truncated or partial copy?): {e}") from None
    except OSError as e:   # a folder where the file should be, a broken link, no permission
        raise LiteLVLMError(f"{path} cannot be read ({e.strerror or e})") from None
