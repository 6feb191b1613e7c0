"""The output folder of a figures run (``litelvlm figures --out``, a notebook's ``OUT``): the files of the
figure sets it draws are replaced as a whole, so an earlier run's files never stay beside the new ones.

A file belongs to the figure set whose registered name is the longest one it starts with (``<name>_``:
``reversal_grid_...`` is ``reversal_grid``'s, not ``reversal``'s; a file of a figure set's earlier name is its
new one's). Every figure file of a figure set drawn now
that this run does not write again is removed when the run's folder commits
(:func:`litelvlm.runs.io.remove_result` inside :class:`litelvlm.runs.run_folder.RunFolder`): a failed or
stopped run leaves the folder as it was. Other files, and other figure sets' files, are left alone.
"""

from __future__ import annotations

import os
from pathlib import Path

from analysis.common.presentation.figure_set import FigureSet, notebook_out_dir
from analysis.figures.registry import FIGURE_SETS, RENAMED
from litelvlm.runs.io import FIGURE_FORMATS, remove_result
from litelvlm.runs.run_folder import RunFolder

#: the kinds of file a figures run writes
FIGURE_SUFFIXES = tuple(f".{fmt}" for fmt in FIGURE_FORMATS)
#: the command whose runs a figures folder holds (the notebooks write the same files as it)
COMMAND = "figures"


def owner(name: str) -> str | None:
    """The figure set whose files are named like ``name``: the longest registered ``<set>_`` it starts with
    (an earlier name, :data:`~analysis.figures.registry.RENAMED`, counting as the new one); else None."""
    sets = [fs for fs in [*FIGURE_SETS, *RENAMED] if name.startswith(f"{fs}_")]
    return RENAMED.get(found := max(sets, key=len), found) if sets else None


def figure_files(out: str | os.PathLike, names: list[str]) -> list[Path]:
    """The figure files (PDF, PNG) in the folder ``out`` (not below it) of the figure sets ``names``."""
    folder = Path(out)
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.suffix in FIGURE_SUFFIXES and p.is_file()
                  and owner(p.name) in names)


def remove_stale(out: str | os.PathLike, names: list[str], written: list[Path]) -> list[Path]:
    """Remove, when the run's folder commits, every figure file in ``out`` of the figure sets ``names`` that
    this run has not ``written``; returns them."""
    kept = {Path(p).name for p in written}
    stale = [p for p in figure_files(out, names) if p.name not in kept]
    for path in stale:
        remove_result(path)
    return stale


def save_runs(figure_set: FigureSet, drawn: list[tuple[dict, dict]],
              out: str | os.PathLike | None) -> list[Path]:
    """A notebook's saving: each group's figures (``(figs, tables)``, the tables of
    :func:`analysis.figures.tree.load_runs`) saved under its run's name (:meth:`FigureSet.save`) into ``out``
           (None: the notebook's own folder,
           :func:`~analysis.common.presentation.figure_set.notebook_out_dir`), the figure set's
    earlier files there removed (:func:`remove_stale`), all in one commit; returns the written paths."""
    folder = notebook_out_dir(figure_set.name) if out is None else Path(out)
    with RunFolder(folder, direct=(), command=COMMAND):
        paths = [p for figs, tables in drawn for p in figure_set.save(figs, tables, folder)]
        remove_stale(folder, [figure_set.name], paths)
    return paths
