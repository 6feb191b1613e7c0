"""A run owns its ``--out``: which command's run a results folder holds, and whether its earlier results are
intact, read from the folder's own small files before torch is imported or a model loads.

Every run that commits writes :data:`MARKER` (``.litelvlm-run.json``) with its results: the command that wrote
them, the SHA-256 and size of every result file it committed, and its resumable folders. A folder written
before that record existed is recognised by its ``config.json`` (the run identity's study, a ``command`` key,
or the command line of its provenance record), a demo's ``demo_summary.json``, a toy CLIP's model
``config.json`` or a toy REFER folder. :func:`claim` (called by ``litelvlm.cli`` for every command that writes
an ``--out`` folder) refuses a folder that holds another command's run, naming that command, and refuses
damaged earlier results (a garbled or mistyped ``config.json``, a table whose bytes are not those its run
committed, a folder or a broken link where a file should be, an unreadable record), each as one line naming
the file. ``--overwrite`` replaces the earlier run whole (see :mod:`litelvlm.runs.transaction`). This module
is this project's own.
"""

from __future__ import annotations

import hashlib
import os
import shlex
from collections.abc import Collection
from pathlib import Path

from ..errors import LiteLVLMError
from .records import WAY_OUT, damaged, plain_name, read_record
from .recovery import settle
from .transaction import check_journal

#: the record of the run a folder holds (written with its results, by ``litelvlm.runs.run_folder``)
MARKER = ".litelvlm-run.json"
#: a run identity's study -> the command that writes it (the others have the command's name)
STUDY_COMMAND = {"grounding": "eval-grounding", "video": "eval-video"}

#: the folders claimed by :func:`claim` in this process: absolute path -> (command, overwrite)
_CLAIMS: dict[str, tuple[str, bool]] = {}


def _key(out: str | os.PathLike) -> str:
    return os.path.abspath(out)


#: config.json fields whose type every reader relies on: name -> (allowed types, what the message calls them)
FIELD_TYPES: dict[str, tuple[tuple[type, ...], str]] = {
    "identity": ((dict,), "an object"), "args": ((dict,), "an object"), "paths": ((dict,), "an object"),
    "run": ((dict, type(None)), "an object"), "command": ((str,), "a string"),
    "model": ((str, type(None)), "a string"),
}


def check_config_fields(path: str | os.PathLike, config: object) -> dict:
    """``config`` (the content of a run's ``config.json`` at ``path``) when its fields have the types readers
    rely on; a LiteLVLMError naming the file and the field otherwise."""
    if not isinstance(config, dict):
        raise damaged(path, f"is not a config.json of this project (a JSON {type(config).__name__})")
    for name, (types, what) in FIELD_TYPES.items():
        if name in config and not isinstance(config[name], types):
            raise damaged(path, f"has a field {name!r} that is a {type(config[name]).__name__}, not {what}")
    ident = config.get("identity")
    if isinstance(ident, dict) and not isinstance(ident.get("study"), str):
        raise damaged(path, "has an 'identity' without a 'study' string")
    for key, entry in (config.get("paths") or {}).items():
        if not isinstance(entry, dict) or not all(isinstance(entry.get(k), str) for k in ("typed", "absolute",
                                                                                           "from_results")):
            raise damaged(path,
                          f"has a 'paths' entry {key!r} that is not typed/absolute/from_results strings")
    return config


def _command_line(run: object) -> str | None:
    line = run.get("command") if isinstance(run, dict) else None
    if not isinstance(line, str):
        return None
    with_options = shlex.split(line)[1:] if line.startswith("litelvlm ") else []
    return next((w for w in with_options if not w.startswith("-")), None)


def _from_config(config: dict, out: Path) -> str | None:
    ident = config.get("identity")
    if isinstance(ident, dict):
        return STUDY_COMMAND.get(ident["study"], ident["study"])
    if isinstance(config.get("command"), str):  # the command's name, or (efficiency) its whole line
        named = config["command"]
        return _command_line({"command": named}) if named.startswith("litelvlm ") else named
    line = _command_line(config.get("run"))
    if line is not None:
        return line
    if config.get("model_type") == "clip" or "architectures" in config and any(out.glob("*.safetensors")):
        return "toy-train"
    return None


def read_run_record(out: str | os.PathLike) -> dict | None:
    """The run record (:data:`MARKER`) of ``out`` (None: there is none) once every field has the type its
    readers rely on and every name in it is a plain relative name inside ``out``
    (:func:`litelvlm.runs.records.plain_name`); a LiteLVLMError naming the record as damaged otherwise."""
    path = Path(out) / MARKER
    if not os.path.lexists(path):
        return None
    record = read_record(path)
    if not isinstance(record, dict) or not isinstance(record.get("command"), str) \
            or not isinstance(record.get("files"), dict) or not isinstance(record.get("direct", []), list):
        raise damaged(path, "is not a run record of this project")
    for rel, entry in record["files"].items():
        plain_name(out, rel, path)
        if not isinstance(entry, dict) or not isinstance(entry.get("sha256"), str) \
                or not isinstance(entry.get("size"), int) or isinstance(entry.get("size"), bool):
            raise damaged(path, f"has an entry {rel!r} that is not a checksum and a size")
    for name in record.get("direct", []):
        plain_name(out, name, path, top=True)
    return record


def owner(out: str | os.PathLike) -> str | None:
    """The command whose run ``out`` holds, or None (no folder, an empty one, or none of this project's runs);
    damaged records are a LiteLVLMError naming the file."""
    out = Path(out)
    if not out.is_dir():
        return None
    record = read_run_record(out)
    if record is not None:
        return record["command"]
    config = out / "config.json"
    if os.path.lexists(config):
        return _from_config(check_config_fields(config, read_record(config)), out)
    if (out / "demo_summary.json").is_file():
        return "demo"
    if (out / "refs(unc).p").is_file() and (out / "scenes.json").is_file():
        return "toy-data"
    return None


def file_digest(path: str | os.PathLike) -> str:
    """The SHA-256 (hex) of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def check_results(out: str | os.PathLike) -> None:
    """Refuse (a LiteLVLMError naming the file) an earlier result of ``out`` whose bytes are not those its run
    committed (:data:`MARKER`): changed, truncated, replaced by a folder or a link, or unreadable."""
    out = Path(out)
    record = read_run_record(out)
    for rel, entry in (record or {"files": {}})["files"].items():
        path = out / rel
        if not os.path.lexists(path):
            continue   # removed since: nothing to damage
        if path.is_symlink() or not path.is_file():
            raise damaged(path, "is a folder or a link where the file its run wrote should be")
        try:
            same = path.stat().st_size == entry.get("size") and file_digest(path) == entry["sha256"]
        except OSError as e:
            raise damaged(path, f"cannot be read ({e.strerror or e})") from None
        if not same:
            raise damaged(path, "is not the file its run wrote (changed, truncated or replaced)")


def claim(out: str | os.PathLike, command: str, overwrite: bool = False,
          known: Collection[str] | None = None) -> None:
    """Check, before anything loads, that ``command`` may write its run into ``out``: refused when the folder
    holds another command's run (naming it) or damaged earlier results (naming the file; a run record naming
    no command of ``known``, the commands there are, is one), unless ``overwrite`` (the earlier run is then
    replaced whole when the new one commits). First, what a stopped or killed run
    left is finished or undone (:func:`litelvlm.runs.recovery.settle`), so the checks read the folder's last
    finished run, never a half-replaced one."""
    _CLAIMS[_key(out)] = (command, overwrite)
    if not overwrite:
        check_journal(out)
    settle(out, discard_damaged=overwrite)
    if overwrite:
        return
    record = read_run_record(out)
    if known is not None and record is not None and record["command"] not in known:
        raise damaged(Path(out) / MARKER,
                      f"names a command this project does not have ({record['command']!r})")
    held = owner(out)
    if held is not None and held != command and record is not None and record.get("stopped"):
        raise LiteLVLMError(f"--out {str(out)!r} holds a stopped run of `litelvlm {held}` (its completed "
                            f"parts), and this is `litelvlm {command}`: run `litelvlm {held}` again to "
                            f"resume it, or {WAY_OUT}")
    if held is not None and held != command:
        raise LiteLVLMError(f"--out {str(out)!r} holds a run of `litelvlm {held}`, and this is `litelvlm "
                            f"{command}`: {WAY_OUT}")
    check_results(out)


def claimed(out: str | os.PathLike) -> tuple[str, bool] | None:
    """``(command, overwrite)`` when :func:`claim` checked ``out`` in this process, else None."""
    return _CLAIMS.get(_key(out))


def overwriting(out: str | os.PathLike) -> bool:
    """Whether the run into ``out`` replaces the earlier run whole (``--overwrite``)."""
    return bool((_CLAIMS.get(_key(out)) or ("", False))[1])


def release(out: str | os.PathLike) -> None:
    """Forget the claim on ``out`` (its run has ended): a later run in this process claims it afresh."""
    _CLAIMS.pop(_key(out), None)
