"""``litelvlm tables``, the writing (after the checks of :mod:`analysis.tables.options`): the paper's tables
from a results tree, each as Markdown, LaTeX (booktabs) and CSV.

The tree is walked once (:func:`analysis.common.runs.run_tree.find_runs`, the walk ``litelvlm figures
--results`` makes): every run folder whose ``config.json`` records its study. Each run of a study a table
reads gives one table (:data:`KINDS`): ``eval-grounding`` the grounding table
(:mod:`analysis.tables.accuracy`), ``efficiency`` and ``validate`` the efficiency table
(:mod:`analysis.tables.efficiency`) and, where the run was timed by stage, the time-by-stage table
(:mod:`analysis.tables.stages`), ``eval-video`` the video table. A file is named
``<table>_<family>-<model>`` (:func:`~analysis.common.runs.identity.identity_tag`); where two runs would share
a name, each adds its folder under the tree. A kind without runs is said in one line; a run that cannot be
read is skipped with one line naming its folder and the reason; a tree that gives no table is an error (exit
2, nothing written). Tables of an earlier run of ``tables`` on the same ``--out`` that this run does not write
again are removed, so the folder holds one run's tables.
"""

from __future__ import annotations

import os
import re
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from tqdm.auto import tqdm

from analysis.common.runs import run_tree
from analysis.common.runs.command import Screen
from analysis.common.runs.identity import identity_tag
from analysis.common.runs.run_tree import NO_RUN, Run, find_runs, unreadable_reason
from analysis.tables.accuracy import GROUNDING, VIDEO, accuracy_table
from analysis.tables.efficiency import efficiency_table
from analysis.tables.options import TablesArgs
from analysis.tables.render import Table, to_markdown, write_table
from analysis.tables.stages import stages_table
from litelvlm.errors import LiteLVLMError
from litelvlm.runs.run_folder import RunFolder
from litelvlm.runs.run_owner import read_run_record

#: what reading a run of an older layout, or a damaged one, raises
UNREADABLE = (LiteLVLMError, KeyError, ValueError, TypeError, IndexError, OSError)
#: the tables: name -> (the studies whose runs it reads, as their identity records them; the commands that
#: make them; the file a run of theirs holds)
KINDS: dict[str, tuple[tuple[str, ...], str, tuple[str, ...]]] = {
    "grounding": (("grounding",), "litelvlm eval-grounding", ("summary.csv",)),
    "efficiency": (("efficiency", "validate"), "litelvlm efficiency (or litelvlm validate)",
                   ("efficiency.csv", "validate.csv")),
    "video": (("video",), "litelvlm eval-video", ("summary.csv",)),
    "stages": (("efficiency", "validate"), "litelvlm validate (or litelvlm efficiency --e2e chain)",
               ("stages.csv",)),
}
#: the tables a run gives only where it holds their file (a run may be timed by stage or not)
WHERE_WRITTEN = ("stages",)
#: the files a run that gives a table holds
TABLE_FILES = tuple(dict.fromkeys(f for _, _, files in KINDS.values() for f in files))
#: the file extensions a table is written in
EXTENSIONS = ("md", "tex", "csv")


def builder(kind: str) -> Callable[[Run, Path, str], Table]:
    """The function that reads one run into a table of ``kind``."""
    if kind == "efficiency":
        return efficiency_table
    if kind == "stages":
        return stages_table
    spec = GROUNDING if kind == "grounding" else VIDEO
    return lambda run, root, name: accuracy_table(run, root, spec, name)


def kinds_of(run: Run) -> list[str]:
    """The tables a run gives: those reading its study, a table of :data:`WHERE_WRITTEN` only where the run
    holds its file."""
    return [k for k, (studies, _, files) in KINDS.items() if run.identity["study"] in studies
            and (k not in WHERE_WRITTEN or any((run.folder / f).is_file() for f in files))]


def slug(text: str) -> str:
    """``text`` as part of a file name (runs of other characters than letters, digits and ``.`` as one
    ``-``)."""
    return re.sub(r"[^A-Za-z0-9.]+", "-", text).strip("-")


def names(runs: list[tuple[str, Run]], root: Path) -> list[str]:
    """Each (kind, run)'s file stem: ``<kind>_<family>-<model>``, and ``_<its folder>`` where two would share
    one."""
    stems = [f"{kind}_{identity_tag(run.identity)}" for kind, run in runs]
    shared = Counter(stems)
    return [stem if shared[stem] == 1 else f"{stem}_{slug(os.path.relpath(run.folder, root)) or 'results'}"
            for stem, (_, run) in zip(stems, runs, strict=True)]


def read_tables(root: Path) -> tuple[list[Table], list[str]]:
    """(the tables of every run under ``root`` a table reads, one line per kind without runs and per run
    skipped)."""
    runs, skipped = find_runs(root)
    taken = [(kind, run) for run in runs for kind in kinds_of(run)]
    lines = [f"tables: skipping {folder}: {why}" for folder, why in skipped
             if any((folder / f).is_file() for f in TABLE_FILES)] + unrecorded(root)
    tables = []
    for (kind, run), name in tqdm(list(zip(taken, names(taken, root), strict=True)), desc="tables",
                                  disable=len(taken) < 2):
        try:
            tables.append(builder(kind)(run, root, name))
        except UNREADABLE as e:
            lines.append(f"tables: skipping {run.folder} ({kind}): {unreadable_reason(e)}")
    for kind, (_, command, _) in KINDS.items():
        if not any(k == kind for k, _ in taken):
            lines.append(f"tables: no {kind} table: no run of {command} under {root}")
    return tables, lines


def unrecorded(root: Path) -> list[str]:
    """One line per folder under ``root`` holding a file a table reads with no ``config.json`` in it or
    above it (up to ``root``): nothing records its study, family and model, so it is no run."""
    return [f"tables: skipping {folder}: it holds {', '.join(found)} {NO_RUN}"
            for folder, found in run_tree.unrecorded(root, TABLE_FILES).items()]


def earlier_tables(out: Path) -> tuple[str, ...]:
    """The tables an earlier run of ``tables`` wrote in ``out``, as its run record lists them (removed at the
    commit unless written again); nothing else of the folder is ever touched."""
    record = read_run_record(out) if out.is_dir() else None
    if record is None or record["command"] != "tables":
        return ()
    return tuple(sorted(rel for rel in record["files"]
                        if "/" not in rel and rel.rsplit(".", 1)[-1] in EXTENSIONS))


def run_tables(a: TablesArgs, screen: Screen = Screen()) -> int:
    """Write every table the tree under ``a.results`` gives into ``a.out`` (a line per table, per kind without
    runs and per skipped run; each table in full when ``screen`` is verbose), then one closing line."""
    root, out = Path(a.results), Path(a.out)
    tables, lines = read_tables(root)
    for line in lines:
        print(line)
    if not tables:
        raise LiteLVLMError(f"--results {a.results!r} gives no table: no readable run of eval-grounding, "
                            "efficiency, validate or eval-video under it (see the lines above)")
    written: list[Path] = []
    with RunFolder(out, owned=earlier_tables(out), direct=(), command="tables") as folder:
        for table in tables:
            written += write_table(table, out)
            line = f"tables: {out / table.name}.{{{','.join(EXTENSIONS)}}} from {table.source}"
            print(line if screen.verbose else f"{line} (--verbose prints it)")
            if screen.verbose:
                print(to_markdown(table))
        folder.drop_stale([p.name for p in written])
    print(f"tables: wrote {len(tables)} tables ({len(written)} files) to {out}")
    random = [t.name for t in tables if t.random]
    if random:
        print(f"RANDOM OR TOY WEIGHTS in {len(random)} of the {len(tables)} tables ({', '.join(random)}): "
              "their numbers exercise the pipeline, they are not findings (each caption says so)")
    return 0


__all__ = ["EXTENSIONS", "KINDS", "builder", "earlier_tables", "names", "read_tables", "run_tables"]
