"""A study's ``--out`` folder: :class:`litelvlm.runs.run_folder.RunFolder` (the lock, one command per folder,
atomic results, cleanup of its own names only; see there) with the studies' resumable parts:
:meth:`RunFolder.resume` checks the configuration the finished parts (``parts/``,
:mod:`analysis.common.runs.parts`) were computed with (``parts/config.json``) before any of them is reused,
and drops unreadable ones. A study checks every input before it enters the folder; whatever it refuses inside
(a :class:`~litelvlm.errors.LiteLVLMError`) removes everything the run wrote, and a folder the run created is
removed again.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from analysis.common.runs.parts import PartStore
from analysis.common.runs.study import check_config, read_json
from litelvlm.errors import LiteLVLMError
from litelvlm.runs.io import write_json
from litelvlm.runs.run_folder import LOCK_NAME
from litelvlm.runs.run_folder import RunFolder as _RunFolder

#: the record of the configuration a folder's finished parts were computed with
PARTS_CONFIG = Path("parts") / "config.json"


class RunFolder(_RunFolder):
    """:class:`litelvlm.runs.run_folder.RunFolder` with :meth:`resume` (a study's finished parts)."""

    # -- what a study asks of its folder --------------------------------------------------------------
    def resume(self, config: dict, growable: dict[str, Callable[[Any, Any], bool]] | None = None,
               ignore: tuple[str, ...] = (), record: bool = True) -> dict | None:
        """Check that the finished parts here were computed with a compatible ``config`` (refused otherwise,
        naming the options), drop unreadable parts, and (``record``) record ``config`` for the next resume.
        Returns the configuration the parts were computed with (None in a fresh folder)."""
        path = self.out / PARTS_CONFIG
        existed = path.exists()
        old = check_config(path.parent if existed else self.out, config, growable, ignore)
        PartStore(self.out).verify()
        if not record:
            return old
        write_json(path, {k: v for k, v in config.items() if k != "run"})
        if existed:   # compatible with the parts it describes: kept even when this run fails
            self.tx.written = [p for p in self.tx.written if p != Path(os.path.abspath(path))]
        return old


def read_config(out: str | Path) -> dict:
    """The ``config.json`` of a finished run in ``out``, as a dict (a LiteLVLMError naming the file
    otherwise)."""
    path = Path(out) / "config.json"
    if not path.is_file():
        raise LiteLVLMError(f"{out} holds no config.json (not a finished run of this project)")
    config = read_json(path)
    if not isinstance(config, dict):
        raise LiteLVLMError(f"{path} is not a config.json of this project (a {type(config).__name__})")
    return config


__all__ = ["LOCK_NAME", "PARTS_CONFIG", "RunFolder", "read_config"]
