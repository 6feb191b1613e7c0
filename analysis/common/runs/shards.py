"""One run on several processes: the sharding ``eval-grounding`` and ``eval-video`` share.

Launched on P processes (``python -m torch.distributed.run --nproc_per_node P -m litelvlm.cli ...`` on CPU,
where ``accelerate launch --cpu`` starts a single process; ``accelerate launch --multi_gpu --num_processes P
-m litelvlm.cli ...`` on GPUs), a study's items (images, videos) are split across the processes (``rank::P``),
each process writes the finished parts of its own items (``litelvlm.runs.parts``), and the main process
alone holds the ``--out`` folder (:class:`~litelvlm.runs.run_folder.RunFolder`: its lock, the resume
check, the tables), merging every process's parts once all have finished. Started as one process (no
launcher), it is the single run, unchanged.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TypeVar

from accelerate import PartialState

from litelvlm.runs.run_folder import RunFolder

T = TypeVar("T")


class Shards:
    """The processes of one run (``accelerate.PartialState`` of the launch; one process without a
    launcher)."""

    def __init__(self, device: str) -> None:
        self.state = PartialState(cpu=device == "cpu")

    @property
    def rank(self) -> int:
        """This process's index, 0 .. ``world`` - 1."""
        return self.state.process_index

    @property
    def world(self) -> int:
        """How many processes share the run."""
        return self.state.num_processes

    @property
    def is_main(self) -> bool:
        """Whether this process holds the folder and merges the parts."""
        return self.state.is_main_process

    def device(self, device: str) -> Any:
        """The device this process loads the model on: ``device`` itself on the CPU or alone, its own GPU
        otherwise."""
        return device if device == "cpu" or self.world == 1 else self.state.device

    def loading(self) -> contextlib.AbstractContextManager:
        """Around the model's loading: the main process first (it writes any cached random model), then the
        others."""
        return self.state.main_process_first()

    def folder(self, out: str | Path, command: str | None = None) -> contextlib.AbstractContextManager:
        """The run's ``--out`` folder: a :class:`RunFolder` owned by ``command`` on the main process, nothing
        on the others."""
        return RunFolder(out, command=command) if self.is_main else contextlib.nullcontext()

    def wait(self) -> None:
        """Wait until every process gets here (after the main one has checked the folder; after every
        part)."""
        self.state.wait_for_everyone()

    def share(self, items: Sequence[T]) -> list[T]:
        """This process's items of ``items``: every ``world``-th from its ``rank``."""
        return list(items[self.rank::self.world])

    def label(self) -> str:
        """``process R/P``, as the progress logs name it."""
        return f"process {self.rank}/{self.world}"


__all__ = ["Shards"]
