"""The run folders of one results tree: every folder under ``--results`` (the root included) whose
``config.json`` records the run's identity (``study``, ``family``, ``model``, ``weights``:
:mod:`analysis.common.runs.identity`), read once and shared by the commands that read a tree (``litelvlm
      figures``,
      :mod:`analysis.figures.tree`; ``litelvlm tables``, :mod:`analysis.tables.compute`). A run's resumable
      ``parts/`` and hidden staging folders are not runs; a run folder that a killed run left half-replaced is
      settled first (:func:`litelvlm.runs.recovery.settle`), so the tree shows its last finished run; a
``config.json`` that records no identity is skipped with the reason.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from analysis.common.runs.identity import identity_label, read_identity
from analysis.common.runs.study import read_json
from litelvlm.errors import LiteLVLMError
from litelvlm.runs.recovery import settle
from litelvlm.runs.transaction import JOURNAL, REPLACED_PREFIX


@dataclass(frozen=True)
class Run:
    """One run folder of a results tree: where it is, its ``config.json`` and the identity it records."""

    folder: Path
    config: dict
    identity: dict

    @property
    def label(self) -> str:
        """``family/model`` (:func:`~analysis.common.runs.identity.identity_label`)."""
        return identity_label(self.identity)


def hidden(parts: tuple[str, ...]) -> bool:
    """Whether a folder (its parts under the tree's root) is in a run's ``parts/`` or in a hidden staging
    folder."""
    return "parts" in parts or any(p.startswith(".") for p in parts)


def find_runs(root: str | os.PathLike) -> tuple[list[Run], list[tuple[Path, str]]]:
    """(the run folders under ``root``, root included, and (folder, reason) for each ``config.json`` that
    records no run identity). A run's resumable ``parts/`` and hidden staging folders are not runs."""
    root = Path(root)
    if not root.is_dir():
        raise LiteLVLMError(f"--results {str(root)!r} is not a folder")
    runs, skipped = [], []
    for folder in sorted({p.parent for p in [*root.rglob(JOURNAL), *root.rglob(f"{REPLACED_PREFIX}*")]}):
        try:   # what a killed run left: its commit finished or its earlier run put back, in one line
            settle(folder)
        except (LiteLVLMError, OSError) as e:
            skipped.append((folder, f"holds what an unfinished run left, which could not be settled ({e})"))
    for path in sorted(root.rglob("config.json")):
        if hidden(path.parent.relative_to(root).parts):
            continue
        try:
            config = read_json(path)
        except LiteLVLMError as e:
            skipped.append((path.parent, f"unreadable config.json ({str(e).splitlines()[0]})"))
            continue
        identity = read_identity(config)
        if identity is None:
            skipped.append(
                (path.parent, "its config.json records no study (written before run identities, or not a run "
                              "folder of this project); rerun its command to draw it"))
            continue
        runs.append(Run(path.parent, config, identity))
    return runs, skipped


def unrecorded(root: Path, names: list[str] | tuple[str, ...]) -> dict[Path, list[str]]:
    """Each folder under ``root`` (root included) holding one of the result files ``names`` with no
    ``config.json`` in it or in a folder above it up to ``root`` -> the names it holds: nothing records its
    study, family and model, so it is no run."""
    held: dict[Path, list[str]] = {}
    for name in names:
        for path in root.rglob(name):
            parts = path.parent.relative_to(root).parts
            if hidden(parts) or not path.is_file():
                continue
            if not any((root.joinpath(*parts[:i]) / "config.json").exists() for i in range(len(parts) + 1)):
                held.setdefault(path.parent, []).append(name)
    return dict(sorted(held.items()))


#: why a folder :func:`unrecorded` found is no run, as every reader of a tree says it
NO_RUN = ("but no config.json (nothing records its study, family and model: a partial copy, or not a run "
          "folder of this project)")

def unreadable_reason(e: BaseException) -> str:
    """One line saying why a run of the tree could not be read (for ``tables`` and ``figures`` alike)."""
    if isinstance(e, KeyError):
        return f"not of this version's layout (no {e.args[0]!r} column or field); rerun its study"
    text = str(e).splitlines()[0] if str(e) else ""
    return f"{'unreadable' if isinstance(e, LiteLVLMError) else type(e).__name__}: {text}"


__all__ = ["NO_RUN", "Run", "find_runs", "hidden", "unreadable_reason", "unrecorded"]
