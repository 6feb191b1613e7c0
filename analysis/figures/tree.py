"""One results tree: every run folder under ``--results``, drawn under its own family and model name.

A run folder is a folder whose ``config.json`` records the run's identity (``study``, ``family``, ``model``,
``weights``: :mod:`analysis.common.runs.identity`). The tree is walked once; each run goes to the figure sets
registered for its study (:attr:`~analysis.common.presentation.figure_set.FigureSet.studies`) that read its
model family and hold the table they draw (a figure set with
:attr:`~analysis.common.presentation.figure_set.FigureSet.replaces` takes the runs of its model families from
a more general one). No figure set opens a folder to guess what it holds. A figure set draws each run on its
own, or (:attr:`~analysis.common.presentation.figure_set.FigureSet.together`) the runs of one model in one
folder, or all its runs, each labelled in the figure; every file is named ``<figure
set>_<family>-<model>[_<folder>]_<figure>``, the folder being the group's under the tree's root (none for the
root itself or the figure set's own folder, e.g. ``grounding/``), so a file keeps its name whatever else the
tree holds; every figure carries ``family/model`` and that folder. A folder it cannot draw is skipped
with one line naming it and the reason, a folder holding a figure set's table but no ``config.json`` too
(:func:`unrecorded`); a figure set without runs names such a folder that holds its tables. A run folder that a
killed run left half-replaced is settled first (:func:`litelvlm.runs.recovery.settle`), so the tree shows its
last finished run.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from analysis.common.presentation.figure_set import (
    CAVEATS_KEY,
    MODELS_KEY,
    NAME_KEY,
    RUNS_KEY,
    FigureSet,
    results_models,
    runs_name,
)
from analysis.common.runs import run_tree
from analysis.common.runs.command import Screen
from analysis.common.runs.run_tree import NO_RUN, Run, find_runs, unreadable_reason
from analysis.figures.registry import FIGURE_SETS
from litelvlm.errors import LiteLVLMError
from litelvlm.threads import default_threads, torch_threads

#: what reading a run of an older layout, or a damaged one, raises while a figure set draws it
UNREADABLE = (LiteLVLMError, KeyError, ValueError, TypeError, IndexError, FileNotFoundError)


def unrecorded(root: Path, figure_sets: list[FigureSet]) -> list[tuple[Path, str]]:
    """(folder, reason) for each folder under ``root`` (root included) holding a table that one of
    ``figure_sets`` draws (a name of its :attr:`~FigureSet.results_files`) with no ``config.json`` in it or in
    a folder above it up to ``root``: nothing records its study, family and model, so it is no run."""
    names = sorted({Path(p).name for fs in figure_sets for p in fs.results_files})
    return [(folder, f"it holds {', '.join(found)} {NO_RUN}; rerun its command to draw it")
            for folder, found in run_tree.unrecorded(root, names).items()]


def holding(fs: FigureSet, skipped: list[tuple[Path, str]]) -> list[tuple[Path, str, str]]:
    """(folder, reason, the tables) of each folder of ``skipped`` that holds a table ``fs`` draws (in it, not
    in a folder below it)."""
    found = []
    for folder, why in skipped:
        tables = [p for p in (p.removeprefix("**/") for p in fs.results_files) if next(folder.glob(p), None)]
        if tables:
            found.append((folder, why, ", ".join(tables)))
    return found


def takes(fs: FigureSet, run: Run) -> bool:
    """Whether ``fs`` draws ``run``: its study, its model family, its options (``accepts``), and a table it
    draws."""
    ident = run.identity
    if ident["study"] not in fs.studies:
        return False
    if fs.model_families is not None and ident["family"] not in fs.model_families:
        return False
    if fs.accepts is not None and not fs.accepts(run.config):
        return False
    return any(next(run.folder.glob(p), None) is not None for p in fs.results_files)


def assign(runs: list[Run], figure_sets: list[FigureSet]) -> tuple[dict[str, list[Run]],
                                                                   list[tuple[Path, str]]]:
    """({figure set: the runs it draws}, (folder, reason) for each run no figure set in ``figure_sets``
    draws)."""
    drawn: dict[str, list[Run]] = {f.name: [] for f in figure_sets}
    skipped = []
    for run in runs:
        takers = [f for f in figure_sets if takes(f, run)]
        replaced = {f.replaces for f in takers if f.replaces}
        takers = [f for f in takers if f.name not in replaced]
        for fs in takers:
            drawn[fs.name].append(run)
        if not takers:
            ident = run.identity
            skipped.append((run.folder, f"no figure set draws {ident['study']} runs of {run.label} "
                                        f"(or the run holds none of the tables they draw)"))
    return drawn, skipped


def groups(fs: FigureSet, runs: list[Run]) -> list[list[Run]]:
    """The runs of ``fs`` in the groups it draws together (:attr:`FigureSet.together`), in tree order."""
    keys: dict[object, list[Run]] = {}
    for run in runs:
        ident = run.identity
        if callable(fs.together):
            key = fs.together(run)
        else:
            key = {"run": run.folder, "parent": (ident["family"], ident.get("model"), run.folder.parent),
                   "all": ()}[fs.together]
        keys.setdefault(key, []).append(run)
    return list(keys.values())


def slug(text: str) -> str:
    """``text`` as a part of a file name (runs of characters other than letters, digits and ``.`` as one
    ``-``)."""
    return re.sub(r"[^A-Za-z0-9.]+", "-", text).strip("-")


@dataclass(frozen=True)
class Group:
    """Runs a figure set draws together, and the name they are saved under: ``prefix`` of every file,
    ``label`` in every figure's top right corner."""

    runs: list[Run]
    prefix: str
    label: str | None


def group_folder(fs: FigureSet, run: Run, root: Path) -> Path:
    """The folder that names ``run``'s group of ``fs`` (:attr:`FigureSet.together`): the run's own, the folder
    holding it (``parent``), the tree's root (``all``), or the folder a grouping key ends with."""
    if fs.together == "run":
        return run.folder
    if fs.together == "parent":
        return run.folder.parent
    if fs.together == "all":
        return root
    key = fs.together(run)
    return key[-1] if isinstance(key, tuple) else key


def run_tag(folder: Path, root: Path, subdir: str | None = None) -> str:
    """``folder`` under the tree's root as a file name and a figure's label name it: ``""`` for the root
    itself (or a folder outside it), the figure set's own folder (``subdir``) at the top left out."""
    rel = Path(os.path.relpath(folder, root))
    parts = rel.parts if rel != Path(".") and ".." not in rel.parts else ()
    if parts and parts[0] == subdir:
        parts = parts[1:]
    return "/".join(parts)


def plan(fs: FigureSet, runs: list[Run], root: Path) -> list[Group]:
    """The groups of ``runs`` that ``fs`` draws (:func:`groups`), each named by its family and model and its
    folder under the root (:func:`group_folder`, :func:`run_tag`), so that every file names its run and keeps
    its name whatever else the tree holds; folders whose names differ only in characters a file name drops
    are numbered."""
    out: list[Group] = []
    used: set[str] = set()
    for group in groups(fs, runs):
        prefix, label = runs_name(fs.name, [r.identity for r in group])
        tag = run_tag(group_folder(fs, group[0], root), root, fs.subdir)
        if tag:
            prefix, label = f"{prefix}_{slug(tag)}", f"{label} ({tag})"
        base, n = prefix, 1
        while prefix in used:
            n += 1
            prefix = f"{base}-{n}"
        used.add(prefix)
        out.append(Group(group, prefix, label))
    return out


def read_group(fs: FigureSet, group: Group) -> dict:
    """The tables of one group of runs as ``fs`` draws them: its tables, the runs' models, identities and
    notes, and the group's name (``NAME_KEY``, which :meth:`FigureSet.save` saves it under)."""
    folders = [r.folder for r in group.runs]
    tables = fs.read_runs(folders) if len(folders) > 1 else fs.read(folders[0])
    models = list(dict.fromkeys(m for f in folders for m in results_models(f)))
    tables = {**tables, MODELS_KEY: models, RUNS_KEY: [r.identity for r in group.runs],
              NAME_KEY: (group.prefix, group.label)}
    return {**tables, CAVEATS_KEY: fs.run_notes(tables, models, folders)}


def survey(root: Path, figure_sets: list[FigureSet], every: list[FigureSet], explicit: bool
           ) -> tuple[dict[str, list[Run]], dict[str, str]]:
    """Walk the tree once: ({figure set: the runs it draws}, {folder or figure set: why skipped}), one line
    printed per skipped folder and per figure set of ``figure_sets`` left without runs whose tables a skipped
    folder holds (``explicit``: that is an error)."""
    runs, skipped = find_runs(root)
    taken, untaken = assign(runs, every)
    skipped += untaken + unrecorded(root, every)
    why: dict[str, str] = {}
    for folder, reason in skipped:
        print(f"figures: skipping {folder}: {reason}")
        why[str(folder)] = reason
    for fs in figure_sets:   # no run, but a skipped folder holds its tables: that folder named
        if not taken.get(fs.name) and (held := holding(fs, skipped)):
            if explicit:
                raise LiteLVLMError(f"no {fs.name} runs to draw in {str(root)!r}; skipped {held[0][0]}: "
                                    f"{held[0][1]}")
            more = f" (and {len(held) - 1} more)" if len(held) > 1 else ""
            why[fs.name] = f"no run to draw in {root}; {held[0][0]}{more} (skipped above) holds {held[0][2]}"
            print(f"figures: skipping {fs.name}: {why[fs.name]}")
    return taken, why


def draw_tree(results: str | os.PathLike, out: str | os.PathLike | None, figure_sets: list[FigureSet],
              every: list[FigureSet], explicit: bool = False,
              screen: Screen = Screen()) -> tuple[dict[str, list[Path]], dict[str, str]]:
    """Draw every run under ``results`` that a figure set of ``figure_sets`` takes (``every``: all registered
    figure sets, which decide which runs one replaces another on); one line per drawn group (its files named
    as ``screen`` says) and per skipped folder. Returns ({figure set: written files}, {figure set or folder:
    why skipped}). ``explicit``: a failing figure set ends the run with its error."""
    root = Path(results)
    taken, why = survey(root, figure_sets, every, explicit)
    drawn: dict[str, list[Path]] = {}
    for fs in figure_sets:
        for group in plan(fs, taken.get(fs.name, []), root):
            names = ", ".join(str(r.folder) for r in group.runs)
            try:
                tables = read_group(fs, group)
                paths = fs.save(fs.draw(tables), tables, out)
            except UNREADABLE as e:
                reason = unreadable_reason(e)
                if explicit:
                    raise e if isinstance(e, LiteLVLMError) else LiteLVLMError(
                        f"{fs.name}: {names}: {reason}") from None
                print(f"figures: skipping {names} ({fs.name}): {reason}")
                why[f"{fs.name} {names}"] = reason
                continue
            if not paths:   # e.g. paired comparisons of a run without the methods they compare
                print(f"figures: skipping {names} ({fs.name}): its tables give none of this figure set's "
                      "figures")
                why[f"{fs.name} {names}"] = "no figure"
                continue
            labels = ", ".join(dict.fromkeys(r.label for r in group.runs))
            print(f"figures: {fs.name}: {labels} from {names}: " + screen.file_names([p.name for p in paths]))
            drawn.setdefault(fs.name, []).extend(paths)
    return drawn, why


def load_runs(figure_set: FigureSet, results: str | os.PathLike | None, smoke: bool = False,
              model: str | None = None) -> list[dict]:
    """The notebooks' reading: the tables of every group of runs of ``figure_set`` under ``results``, read
    and named as ``litelvlm figures --results`` reads and names them (:func:`plan`, :func:`read_group`), one
    line per run it skips; ``results`` None with ``smoke``: the one group of small results made now
    (:meth:`FigureSet.load`). No run to draw is an error saying how to make one."""
    figure_set.check()
    if results is None:  # made now on the command's thread count for the model (one for a tiny or toy one)
        with torch_threads(default_threads(model)):
            return [figure_set.load(None, smoke, model)]
    root = Path(results)
    taken, _ = survey(root, [figure_set], list(FIGURE_SETS.values()), explicit=True)
    found = []
    for group in plan(figure_set, taken.get(figure_set.name, []), root):
        try:
            found.append(read_group(figure_set, group))
        except UNREADABLE as e:
            print(f"figures: skipping {', '.join(str(r.folder) for r in group.runs)} ({figure_set.name}): "
                  f"{unreadable_reason(e)}")
    if not found:
        raise LiteLVLMError(f"no {figure_set.name} runs to draw in {str(results)!r}; "
                            + figure_set.results_hint(results))
    return found


def draw_figure_set(figure_set: FigureSet, results: str | os.PathLike,
                    out: str | os.PathLike | None) -> list[Path]:
    """Every run of ``figure_set`` under ``results``, each drawn on its own under its family and model
    (:func:`draw_tree` over the registered figure sets); none is an error saying how to make them."""
    figure_set.check()
    drawn, _ = draw_tree(results, out, [figure_set], list(FIGURE_SETS.values()), explicit=True)
    if not drawn:
        raise LiteLVLMError(f"no {figure_set.name} runs in {str(results)!r}; "
                            + figure_set.results_hint(results))
    return drawn[figure_set.name]
