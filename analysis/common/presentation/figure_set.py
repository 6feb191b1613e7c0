"""A figure set: where its results come from (``make_smoke``, ``read``), how they are drawn (``draw``: the
plot functions of its study's ``plots`` module, and ``analysis.common.presentation.style``) and which notebook
shows it.

``figure_set(results_dir, out_dir, smoke)`` loads the figure set's result tables, draws them and saves
every figure as PDF and PNG into ``out_dir``. With ``smoke`` and no results folder, the figure set
first makes its own small results (tiny or bundled models, a few samples) in a temporary folder.
"""

from __future__ import annotations

import importlib.util
import io
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.text import Text

from analysis.common.options.defaults import DEFAULT_OUT
from analysis.common.presentation import style
from analysis.common.presentation.caveats import draw_notes, run_caveats
from analysis.common.presentation.style import FOOTNOTE_SIZE, LABELLED_GID, PNG_DPI, weights_footnote
from analysis.common.runs.command import Screen
from analysis.common.runs.identity import identity_label, identity_tag, read_identity
from analysis.common.runs.study import read_json
from litelvlm.errors import LiteLVLMError
from litelvlm.runs.io import PDF_METADATA, PNG_METADATA
from litelvlm.runs.staging import current


def figure_set_dir(results_dir: str | os.PathLike, sub: str) -> Path:
    """``results_dir/sub`` when it exists (a results tree), else ``results_dir`` (one command's --out)."""
    d = Path(results_dir)
    if not d.is_dir():
        raise LiteLVLMError(f"--results {str(d)!r} is not a folder")
    return d / sub if (d / sub).is_dir() else d


#: the environment variable that moves a notebook's default output folder (:func:`notebook_out_dir`)
OUT_ENV = "LITELVLM_FIGURES_DIR"


#: the notebooks' folder of a checkout; its ``out/`` (ignored by git) holds a folder per notebook
NOTEBOOK_DIR = Path(__file__).resolve().parents[3] / "notebooks"


def notebook_out_dir(figure_set: str = "") -> Path:
    """Where the notebook of ``figure_set`` writes when run with ``OUT = None``: its own folder,
    ``out/<figure_set>`` beside the notebooks (ignored by git), or ``$LITELVLM_FIGURES_DIR/<figure_set>``
    (outside a checkout: ``litelvlm-figures/ <figure_set>`` in the working directory). Absolute, so Jupyter,
    nbconvert (working directory: the notebook's folder) and papermill (the caller's) write to the same place;
    never a folder other processes share, never the committed figures."""
    env = os.environ.get(OUT_ENV)
    root = Path(env) if env else NOTEBOOK_DIR / "out" if NOTEBOOK_DIR.is_dir() else Path.cwd() / DEFAULT_OUT
    return (root / figure_set).resolve()


def save_figures(figs: dict, out_dir: str | os.PathLike | None, figure_set: str, models=(),
                 label: str | None = None, prefix: str | None = None, notes=(), timing=(),
                 timed: tuple[str, ...] = ()) -> list[Path]:
    """Save ``{name: figure}`` as ``out_dir/<prefix>_<name>.pdf`` and ``.png`` (``prefix`` None:
    ``figure_set``; ``out_dir`` None: :func:`notebook_out_dir` of ``figure_set``), each with a footnote when
    ``models`` (those that made the results) have random or toy weights, unless the figure was labelled with
    its own data's weights (``analysis.common.presentation.style.label_weights``), and with ``label`` (the
    runs' ``family/model``) in its top right corner when given, and ``notes`` (the runs' null results,
    :mod:`analysis.common.presentation.caveats`) under it, with ``timing`` (the runs' busy-machine caveats)
    under each figure whose name starts with one of ``timed`` (those that show measured times). A figure whose
    file would be byte-identical to one written before it in this call is not written twice: one line names
    both; returns the paths."""
    out_dir = notebook_out_dir(figure_set) if out_dir is None else out_dir
    prefix = figure_set if prefix is None else prefix
    paths: list[Path] = []
    written: dict[str, tuple] = {}
    for name, fig in figs.items():
        if fig.get_gid() != LABELLED_GID:  # a figure labelled with its own data's weights keeps that note
            weights_footnote(fig, *models)
        if label:
            fig.text(0.995, 0.995, label, ha="right", va="bottom", fontsize=FOOTNOTE_SIZE, color="0.35",
                     gid="run-label")
        draw_notes(fig, [*notes, *(timing if name.startswith(tuple(timed)) and timed else ())])
        mine = _fingerprint(fig) if written else None
        twin = next((n for n, (png, fp) in written.items() if fp == mine and same_png(fig, png)), None)
        # the same figure under another name (e.g. FLOPs, which no attention kernel changes)
        if twin is not None:
            print(f"figures: {prefix}_{name} is identical to {twin}: written once, as {twin}")
            continue
        files = style.save_figure(fig, out_dir, f"{prefix}_{name}")
        paths += files
        written[f"{prefix}_{name}"] = (next(p for p in files if p.suffix == ".png"),
                                       _fingerprint(fig, drawn=True))
    return paths


def _fingerprint(fig, drawn: bool = False) -> tuple:
    """What ``fig`` shows, cheaply: its size, and each artist's kind, text, data and visibility (``drawn``: it
    was drawn since its last change)."""
    if not drawn:
        fig.draw_without_rendering()  # tick labels are filled in when a figure is drawn
    parts: list = [tuple(fig.get_size_inches())]
    for artist in fig.findobj():
        data = artist.get_text() if isinstance(artist, Text) else None
        for getter in () if data is not None else ("get_xydata", "get_offsets", "get_array"):
            try:
                data = getattr(artist, getter, lambda: None)()
            except TypeError:  # a getter that wants arguments (a contour's labels): not this artist's data
                continue
            if data is not None:
                break
        parts.append((type(artist).__name__, artist.get_visible(),
                      np.asarray(data).tobytes() if data is not None and not isinstance(data, str) else data))
    return tuple(parts)


def same_png(fig, png: Path) -> bool:
    """Whether ``fig`` would be written as the same bytes as the PNG file ``png`` written before it (this
    run's staged copy while a transaction holds it)."""
    kwargs = {"dpi": PNG_DPI, "bbox_inches": "tight", "pad_inches": 0.02}
    buf = io.BytesIO()  # as save_figure writes it: the PDF first (a first drawing can differ), then the PNG
    fig.savefig(io.BytesIO(), format="pdf", metadata=dict(PDF_METADATA), **kwargs)
    fig.savefig(buf, format="png", metadata=dict(PNG_METADATA), **kwargs)
    return buf.getvalue() == current(png).read_bytes()


def run_identities(folder: str | os.PathLike) -> list[dict]:
    """The run identities (:mod:`analysis.common.runs.identity`) recorded by the ``config.json`` files of a
    results folder and its subfolders, in tree order, each once (a run's ``parts/`` and hidden staging folders
    aside)."""
    found: list[dict] = []
    root = Path(folder)
    for path in sorted(root.rglob("config.json")):
        parts = path.parent.relative_to(root).parts
        if "parts" in parts or any(p.startswith(".") for p in parts):
            continue
        try:
            ident = read_identity(read_json(path))
        except LiteLVLMError:
            continue
        if ident is not None and ident not in found:
            found.append(ident)
    return found


def runs_name(name: str, identities: list[dict]) -> tuple[str, str | None]:
    """(file-name prefix, figure label) of figure set ``name`` drawn from runs of ``identities``:
    ``<name>_<family>-<model>[_<family>-<model>...]`` and ``family/model, ...`` (:func:`identity_tag`,
    :func:`identity_label`); ``name`` and no label without identities."""
    if not identities:
        return name, None
    tags = "_".join(dict.fromkeys(identity_tag(i) for i in identities))
    return f"{name}_{tags}", ", ".join(dict.fromkeys(identity_label(i) for i in identities))


#: the key under which :meth:`FigureSet.load` adds the model strings of the results to their tables
MODELS_KEY = "weights_models"
#: the key under which :meth:`FigureSet.load` adds the identities of the runs that made the tables
#: (:func:`run_identities`)
RUNS_KEY = "run_identities"
#: the key under which :meth:`FigureSet.load` adds the runs' null results and timing caveats
#: (:meth:`FigureSet.run_notes`)
CAVEATS_KEY = "run_caveats"
#: the key under which a results tree's group of runs carries its (file-name prefix, figure label), the same
#: in the notebooks and ``litelvlm figures`` (:func:`analysis.figures.tree.plan`)
NAME_KEY = "run_name"


def results_models(folder: str | os.PathLike) -> list[str | None]:
    """The model strings recorded in the ``config.json`` files of a results folder (and its
    subfolders): ``model`` and a ``clip`` string, at the top level or under ``args``."""
    models: list[str | None] = []
    for path in sorted(Path(folder).rglob("config.json")):
        try:
            cfg = read_json(path)
        except LiteLVLMError:
            continue
        if not isinstance(cfg, dict):
            continue
        for part in (cfg, cfg.get("args")):
            if not isinstance(part, dict) or "model" not in part:
                continue
            for key in ("model", "clip"):
                value = part.get(key)
                if (value is None and key == "model") or isinstance(value, str):
                    models.append(value)
    return list(dict.fromkeys(models))


@dataclass(frozen=True)
class FigureSet:
    """A figure set: its results, its drawing, its notebook (``notebooks/<notebook>.ipynb``)."""

    name: str
    notebook: str
    title: str
    description: str
    #: the command(s) whose results the figure set draws, as shown in messages and the notebook
    command: str
    #: modules the figure set needs (its study and its plot functions)
    requires: tuple[str, ...]
    #: the figure set's folder in a results tree (``results/<subdir>``)
    subdir: str
    #: ``make_smoke(folder, model, screen)`` writes small results into ``folder``, its studies printing as
    #: ``screen`` says (:class:`analysis.common.runs.command.Screen`)
    make_smoke: Callable[[Path, str | None, Screen], None]
    #: ``read(folder)`` returns the result tables of a results folder
    read: Callable[[Path], dict]
    #: ``draw(tables)`` returns ``{name: figure}``; its body is copied verbatim into the notebook
    draw: Callable[[dict], dict]
    #: globs (relative to the figure set's folder) of which any one marks a folder holding its results
    results_files: tuple[str, ...]
    #: how to make the results into ``{out}`` (a command line with an ``{out}`` placeholder)
    make_results: str
    smoke_note: str = "tiny random-weight models"
    extra_imports: tuple[str, ...] = field(default_factory=tuple)
    #: ``read`` takes a whole tree and keeps its runs apart itself (one line per run): the figure set is drawn
    #: once from ``--results``; otherwise each folder that holds its results is drawn on its own
    tree: bool = False
    #: the studies (a run's ``identity.study``, :mod:`analysis.common.runs.identity`) whose runs the figure
    #: set
    #: draws
    studies: tuple[str, ...] = ()
    #: the model families whose runs it draws (None: every one)
    model_families: tuple[str, ...] | None = None
    #: a more general figure set that does not draw the runs this one takes
    replaces: str | None = None
    #: ``accepts(config)``: whether a run of its study, by its recorded options, is one it draws (None: every
    #: one)
    accepts: Callable[[dict], bool] | None = None
    #: which runs are drawn together: each on its own (``run``), those of one model in one folder
    #: (``parent``), all (``all``, each labelled in the figure), or those a function of the run
    #: (:class:`analysis.figures.tree.Run`) gives one key; several are read with :attr:`read_runs`
    together: str | Callable[[Any], object] = "run"
    #: ``read_runs(folders)``: the result tables of several run folders, each kept apart (``together`` not
    #: ``run``)
    read_runs: Callable[[list[Path]], dict] | None = None
    #: ``notes(tables, models)``: the null results of the tables (one line each,
    #: :mod:`analysis.common.presentation.caveats`), drawn under every figure of them; None: the figure set
    #: names none
    notes: Callable[[dict, list], list[str]] | None = None
    #: the names (their starts) of its figures that show measured times: a busy run's caveat is drawn under
    #: them
    timed: tuple[str, ...] = ()

    def run_notes(self, tables: dict, models, folders) -> dict:
        """What the figures drawn from ``tables`` say under them (:func:`save_figures`' keywords): their null
        results (:attr:`notes`), and under the :attr:`timed` ones the timing caveats the run folders
        ``folders`` recorded."""
        found = list(self.notes(tables, list(models)) if self.notes is not None else [])
        return {"notes": found, "timing": list(dict.fromkeys(c for f in folders for c in run_caveats(f))),
                "timed": self.timed}

    def missing(self) -> list[str]:
        """Why this figure set cannot be drawn now: the modules it needs that do not exist (yet)."""
        return [m for m in self.requires if importlib.util.find_spec(m) is None]

    def check(self) -> None:
        """Raise a clear error when the figure set's inputs do not exist."""
        missing = self.missing()
        if missing:
            raise LiteLVLMError(f"figure set {self.name!r} needs {', '.join(missing)} "
                                f"(the `{self.command}` results and plot functions), which are not available "
                                "yet")

    def results_hint(self, results_dir: str | os.PathLike) -> str:
        """Where and how to make this figure set's missing results for ``results_dir``."""
        d = Path(results_dir)
        target = d if d.name == self.subdir else d / self.subdir
        return (f"make them with `{self.make_results.format(out=target)}`, or small ones with "
                f"`litelvlm figures --smoke --figure-set {self.name}`")

    def smoke_results(self, out_dir: str | os.PathLike, model: str | None = None,
                      screen: Screen = Screen()) -> Path:
        """Make this figure set's small smoke results in ``out_dir/<subdir>`` (its studies printing as
        ``screen`` says); returns that folder."""
        self.check()
        d = Path(out_dir) / self.subdir
        d.mkdir(parents=True, exist_ok=True)
        self.make_smoke(d, model, screen)
        return d

    def load(self, results_dir: str | os.PathLike | None, smoke: bool = False,
             model: str | None = None, screen: Screen = Screen()) -> dict:
        """The result tables of small smoke results made now (``smoke``, no ``results_dir``), under
        ``MODELS_KEY`` the model strings that made them (:func:`results_models`). A results tree is read run
        by run by :func:`analysis.figures.tree.load_runs` (the notebooks' route) or drawn by
        :func:`analysis.figures.tree.draw_tree` (the command's), which sit above this module."""
        self.check()
        if results_dir is not None:
            raise LiteLVLMError(f"{self.name}: a results tree is read by analysis.figures.tree.load_runs("
                                f"figure_set, {str(results_dir)!r}), each run under its own family and model")
        if not smoke:
            raise LiteLVLMError(f"figure set {self.name!r}: give --results DIR (or --smoke to make small "
                                "results)")
        with tempfile.TemporaryDirectory(prefix=f"litelvlm-{self.name}-") as tmp:
            folder = self.smoke_results(tmp, model, screen)
            tables = {**self.read(folder), MODELS_KEY: results_models(folder),
                      RUNS_KEY: run_identities(folder)}
            return {**tables, CAVEATS_KEY: self.run_notes(tables, tables[MODELS_KEY], [folder])}

    def save(self, figs: dict, tables: dict, out_dir: str | os.PathLike | None) -> list[Path]:
        """Save the figures drawn from ``tables`` (:meth:`load`, or one group of runs of
        :func:`analysis.figures.tree.load_runs`) under the name of the runs that made them (``NAME_KEY``, the
        tree's: family and model, and the run's folder where one model has two runs; else :func:`runs_name`),
        with their weights' footnote."""
        prefix, label = tables.get(NAME_KEY) or runs_name(self.name, tables.get(RUNS_KEY, []))
        return save_figures(figs, out_dir, self.name, tables[MODELS_KEY], label=label, prefix=prefix,
                            **tables.get(CAVEATS_KEY, {}))

    def __call__(self, results_dir: str | os.PathLike | None, out_dir: str | os.PathLike, smoke: bool = False,
                 model: str | None = None, screen: Screen = Screen()) -> list[Path]:
        """Load, draw and save this figure set's figures from its smoke results (``results_dir`` None);
        returns the written paths, named ``<figure set>_<family>-<model>_<name>`` (:func:`runs_name`). A
        results tree is drawn by
        :func:`analysis.figures.tree.draw_figure_set` (each run on its own, never merged), which sits above
        this module."""
        if results_dir is not None:
            raise LiteLVLMError(f"{self.name}: a results folder is drawn by "
                                f"analysis.figures.tree.draw_figure_set(figure_set, {str(results_dir)!r}, "
                                "out_dir), which reads every run under its own family and model")
        tables = self.load(results_dir, smoke, model, screen)
        return self.save(self.draw(tables), tables, out_dir)
