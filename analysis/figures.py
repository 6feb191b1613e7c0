"""``litelvlm figures``: every figure family from result tables, without Jupyter.

One :class:`Family` per figure family. ``family(results_dir, out_dir, smoke)`` loads the
family's result tables (``load``), draws them with the plot functions of
:mod:`analysis.plots` (``draw``) and saves every figure as PDF and PNG into ``out_dir``.
The notebooks in ``notebooks/`` are generated from the same functions: the parameters
cell, a call to ``load``, then the body of ``draw`` copied verbatim, then
:func:`save_figures`. ``litelvlm figures --write-notebooks`` regenerates them and a test
checks that the committed notebooks equal the generated ones, so the two routes cannot
diverge; another test checks that both give byte-identical files.

With ``--smoke`` and no ``--results``, a family first makes its own small results by
running its command(s) on tiny or bundled models and a few samples, in a temporary folder.
"""

from __future__ import annotations

import ast
import importlib.util
import inspect
import os
import sys
import tempfile
import textwrap
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from litelvlm.cli_args import add_dataclass_arguments, arg, from_namespace, split_list
from litelvlm.errors import LiteLVLMError

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK_DIR = ROOT / "notebooks"
#: The CLIP model smoke results use unless ``--model`` says otherwise (random weights, 24x24 grid).
SMOKE_MODEL = "tiny336-random"


def shared_data_dir() -> Path:
    """``../shared/data`` beside the repository (or ``$LITELVLM_SHARED_DATA``)."""
    return Path(os.environ.get("LITELVLM_SHARED_DATA", ROOT.parent / "shared" / "data"))


def coco128_dir() -> Path | None:
    """The real COCO-128 REFER-layout sample when it is present, else None."""
    d = shared_data_dir() / "coco128_refer"
    return d if (d / "refs(unc).p").exists() else None


def family_dir(results_dir: str | os.PathLike, sub: str) -> Path:
    """``results_dir/sub`` when it exists (a results tree), else ``results_dir`` (one command's --out)."""
    d = Path(results_dir)
    if not d.is_dir():
        raise LiteLVLMError(f"--results {str(d)!r} is not a folder")
    return d / sub if (d / sub).is_dir() else d


def save_figures(figs: dict, out_dir: str | os.PathLike, family: str) -> list[Path]:
    """Save ``{name: figure}`` as ``out_dir/<family>_<name>.pdf`` and ``.png``; returns the paths."""
    from analysis.style import save_figure

    paths: list[Path] = []
    for name, fig in figs.items():
        paths += save_figure(fig, out_dir, f"{family}_{name}")
    return paths


@dataclass(frozen=True)
class Family:
    """A figure family: where its results come from, how they are drawn, which notebook shows it."""

    name: str
    notebook: str
    title: str
    description: str
    command: str
    requires: tuple[str, ...]
    subdir: str
    make_smoke: Callable[[Path, str | None], None] | None = None
    read: Callable[[Path], dict] | None = None
    draw: Callable[[dict], dict] | None = None
    smoke_note: str = "tiny random-weight models"
    extra_imports: tuple[str, ...] = field(default_factory=tuple)

    @property
    def wired(self) -> bool:
        """Whether ``litelvlm figures`` knows how to make, read and draw this family's results."""
        return None not in (self.make_smoke, self.read, self.draw)

    def missing(self) -> list[str]:
        """Why this family cannot be drawn now: the modules it needs that do not exist (yet)."""
        out = [m for m in self.requires if importlib.util.find_spec(m) is None]
        if not self.wired:
            out.append(f"its module analysis/families/{self.name}.py (loader and drawing)")
        return out

    def check(self) -> None:
        """Raise a clear error when the family's inputs do not exist."""
        missing = self.missing()
        if missing:
            raise LiteLVLMError(f"figure family {self.name!r} needs {', '.join(missing)} "
                                f"(the `{self.command}` results and plot functions), which are not available yet")

    def smoke_results(self, out_dir: str | os.PathLike, model: str | None = None) -> Path:
        """Make this family's small smoke results in ``out_dir/<subdir>``; returns that folder."""
        self.check()
        d = Path(out_dir) / self.subdir
        d.mkdir(parents=True, exist_ok=True)
        self.make_smoke(d, model)
        return d

    def load(self, results_dir: str | os.PathLike | None, smoke: bool = False, model: str | None = None) -> dict:
        """The result tables from ``results_dir``; with ``smoke`` and no folder, small ones made now."""
        self.check()
        if results_dir is not None:
            return self.read(family_dir(results_dir, self.subdir))
        if not smoke:
            raise LiteLVLMError(f"figure family {self.name!r}: give --results DIR (or --smoke to make small results)")
        with tempfile.TemporaryDirectory(prefix=f"litelvlm-{self.name}-") as tmp:
            return self.read(self.smoke_results(tmp, model))

    def __call__(self, results_dir: str | os.PathLike | None, out_dir: str | os.PathLike, smoke: bool = False,
                 model: str | None = None) -> list[Path]:
        """Load, draw and save this family's figures; returns the written paths."""
        self.check()
        tables = self.load(results_dir, smoke, model)
        return save_figures(self.draw(tables), out_dir, self.name)


FAMILIES: dict[str, Family] = {}


def register(family: Family) -> Family:
    """Add ``family`` to :data:`FAMILIES` (in notebook order)."""
    FAMILIES[family.name] = family
    return family


register(Family(
    name="retention", notebook="03_token_retention", title="Token retention",
    description="", command="python -m analysis.retention", requires=("analysis.retention",),
    subdir="retention"))
register(Family(
    name="reversal", notebook="01_similarity_reversal", title="Similarity reversal",
    description="A gallery of images with similarity maps, referent contours and the lowest/highest-similarity "
                "tokens; AUROC against vision layer, one line per CLIP model; reversal by mask area and category.",
    command="litelvlm reversal", requires=("analysis.reversal", "analysis.plotting.clip_studies"), subdir="reversal"))
register(Family(
    name="sink", notebook="02_text_attention_sink", title="Text attention sink",
    description="[EOS]->[SOS] against content tokens per layer and head, one example sentence drawn like the "
                "project page's interactive view, and the sink ablation.",
    command="litelvlm sink", requires=("analysis.attention_sink", "analysis.plotting.clip_studies"), subdir="sink"))
register(Family(
    name="grounding", notebook="04_grounding_vs_budget", title="Grounding against budget",
    description="cIoU/gIoU per method and token budget, with the `official` and `per-expression` protocols.",
    command="litelvlm eval-grounding", requires=("analysis.grounding", "analysis.plotting.grounding"),
    subdir="grounding"))
register(Family(
    name="importance", notebook="05_importance_correlation", title="Importance correlation",
    description="Correlation of CLIP token ranks with the LLM's token importance against LLM layer, top-k "
                "overlap, and the oracle ablation.",
    command="litelvlm importance", requires=("analysis.importance", "analysis.plotting.importance"),
    subdir="importance"))
register(Family(
    name="efficiency", notebook="06_efficiency", title="Efficiency",
    description="FLOPs, prefill time, CUDA time and memory per budget, with the paper's numbers and the "
                "FLOPs-ideal limit drawn in.",
    command="litelvlm efficiency", requires=("analysis.efficiency", "analysis.plotting.efficiency"),
    subdir="efficiency"))


def _load_family_modules() -> None:
    """Import every module of :mod:`analysis.families`; each registers its (wired) family,
    replacing the placeholder above. A new family needs a new module there, no edit here."""
    import pkgutil

    import analysis.families as fams

    for info in sorted(pkgutil.iter_modules(fams.__path__), key=lambda m: m.name):
        if not info.name.startswith("_"):
            importlib.import_module(f"{fams.__name__}.{info.name}")


_load_family_modules()
FAMILIES = dict(sorted(FAMILIES.items(), key=lambda kv: kv[1].notebook))


# --------------------------------------------------------------------------- notebooks

def draw_body(fn: Callable) -> str:
    """The source of ``fn``'s body without its docstring and final ``return``, dedented."""
    src = textwrap.dedent(inspect.getsource(fn))
    tree = ast.parse(src)
    body = tree.body[0].body
    if body and isinstance(body[0], ast.Expr) and isinstance(getattr(body[0], "value", None), ast.Constant):
        body = body[1:]
    if body and isinstance(body[-1], ast.Return):
        body = body[:-1]
    lines = src.splitlines()
    return textwrap.dedent("\n".join(lines[body[0].lineno - 1: body[-1].end_lineno])).rstrip() + "\n"


def make_notebook(family: Family):
    """The notebook of ``family`` (an ``nbformat`` v4 notebook, no outputs)."""
    import nbformat
    from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

    cells = [
        new_markdown_cell(
            f"# {family.notebook[:2]} · {family.title}\n\n{family.description}\n\n"
            f"Run top to bottom. With the defaults (`SMOKE = True`, `RESULTS = None`) the results are made now, "
            f"small, with {family.smoke_note}: such figures show that the pipeline works, not findings. "
            f"For the real figures set `RESULTS` to the output folder of `{family.command}` (or to a folder "
            f"holding a `{family.name}/` subfolder) and `SMOKE = False`.\n\n"
            f"The same figures come from the command line: `litelvlm figures --family {family.name} "
            f"[--results DIR] [--smoke]`. This notebook is generated from `analysis/figures.py` "
            f"(`litelvlm figures --write-notebooks`); edit that file, not the notebook."),
        new_code_cell("RESULTS = None  # results folder (None: make small smoke results now)\n"
                      "MODEL = None  # model for smoke results (None: the default tiny model of the family)\n"
                      "SMOKE = True\n"
                      'OUT = "../figures"  # where the PDF and PNG files go',
                      metadata={"tags": ["parameters"]}),
        new_code_cell("from IPython.display import Image, display\n\n"
                      "from analysis import plots\n"
                      "from analysis.figures import FAMILIES, save_figures\n"
                      + "".join(f"{line}\n" for line in family.extra_imports)
                      + f'\nfamily = FAMILIES["{family.name}"]\n'
                      "family.check()\n"
                      "tables = family.load(RESULTS, SMOKE, MODEL)\n"
                      "sorted(tables)"),
        new_code_cell(draw_body(family.draw)
                      + f'paths = save_figures(figs, OUT, "{family.name}")\n'
                      "[str(p) for p in paths]"),
        new_code_cell('for p in paths:\n    if p.suffix == ".png":\n        display(Image(filename=str(p)))'),
    ]
    nb = new_notebook(cells=cells, metadata={
        "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
        "language_info": {"name": "python"}})
    for i, cell in enumerate(nb.cells):  # stable ids: regenerating gives the same file
        cell["id"] = f"{family.name}-{i}"
    nbformat.validate(nb)
    return nb


def notebook_path(family: Family, notebook_dir: str | os.PathLike = NOTEBOOK_DIR) -> Path:
    return Path(notebook_dir) / f"{family.notebook}.ipynb"


def notebook_text(family: Family) -> str:
    """The exact file contents of ``family``'s notebook."""
    import nbformat

    return nbformat.writes(make_notebook(family)) + "\n"


def write_notebooks(notebook_dir: str | os.PathLike = NOTEBOOK_DIR) -> list[Path]:
    """(Re)write every family's notebook; returns the paths."""
    from litelvlm.io import atomic_path

    out = []
    for fam in FAMILIES.values():
        if not fam.wired:
            continue
        path = notebook_path(fam, notebook_dir)
        with atomic_path(path) as tmp:
            tmp.write_text(notebook_text(fam))
        out.append(path)
    return out


def kernel_name() -> str:
    """A Jupyter kernel that runs this interpreter: registered (once) in a private folder on JUPYTER_PATH."""
    import hashlib
    import json

    name = "litelvlm-" + hashlib.sha256(sys.executable.encode()).hexdigest()[:10]
    root = Path(tempfile.gettempdir()) / f"litelvlm-kernels-{os.getuid() if hasattr(os, 'getuid') else 0}"
    spec_dir = root / "kernels" / name
    spec_dir.mkdir(parents=True, exist_ok=True)
    spec = {"argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
            "display_name": f"litelvlm ({sys.executable})", "language": "python"}
    (spec_dir / "kernel.json").write_text(json.dumps(spec))
    paths = os.environ.get("JUPYTER_PATH", "")
    if str(root) not in paths.split(os.pathsep):
        os.environ["JUPYTER_PATH"] = os.pathsep.join(p for p in (str(root), paths) if p)
    return name


def execute_notebook(family: Family, results_dir, out_dir, smoke: bool, model: str | None = None,
                     notebook_dir: str | os.PathLike = NOTEBOOK_DIR, executed: str | os.PathLike | None = None,
                     timeout: int = 600) -> list[Path]:
    """Run ``family``'s notebook with papermill (this interpreter as kernel); returns the written figures."""
    import papermill

    nb = notebook_path(family, notebook_dir)
    if not nb.exists():
        raise LiteLVLMError(f"notebook {str(nb)!r} does not exist; run `litelvlm figures --write-notebooks`")
    out_dir = Path(out_dir).resolve()
    before = {p: p.stat().st_mtime_ns for p in out_dir.glob(f"{family.name}_*")} if out_dir.exists() else {}
    params = {"RESULTS": None if results_dir is None else str(Path(results_dir).resolve()),
              "MODEL": model, "SMOKE": bool(smoke), "OUT": str(out_dir)}
    with tempfile.TemporaryDirectory() as tmp:
        papermill.execute_notebook(str(nb), str(executed or Path(tmp) / nb.name), parameters=params,
                                   kernel_name=kernel_name(), cwd=str(nb.parent), progress_bar=False,
                                   execution_timeout=timeout)
    return sorted(p for p in out_dir.glob(f"{family.name}_*")
                  if p.suffix in (".pdf", ".png") and before.get(p) != p.stat().st_mtime_ns)


# --------------------------------------------------------------------------- command

@dataclass
class FiguresArgs:
    results: str = arg(None, help="results folder: one subfolder per family (retention/, reversal/, ...) "
                                  "or one command's --out")
    smoke: bool = arg(False, help="without --results, make small results with tiny/bundled models first")
    out: str = arg("figures", help="folder for the PDF and PNG files")
    family: list[str] = arg(None, help="only these families (default: all)", metavar="NAME")
    model: str = arg(None, help="model for smoke results (default: each family's tiny model)")
    via_notebooks: bool = arg(False, help="execute the notebooks with papermill instead of calling the "
                                          "family functions (same files)")


def add_arguments(parser) -> None:
    add_dataclass_arguments(parser, FiguresArgs)
    parser.add_argument("--list", action="store_true", help="list the figure families and exit")
    parser.add_argument("--write-notebooks", action="store_true",
                        help="regenerate notebooks/ from the family functions and exit")


def run(ns) -> int:
    if ns.list:
        for fam in FAMILIES.values():
            missing = fam.missing()
            state = "ready" if not missing else "not available: needs " + ", ".join(missing)
            print(f"{fam.name:12s} notebooks/{fam.notebook}.ipynb  [{state}]  {fam.title}")
        return 0
    if ns.write_notebooks:
        for p in write_notebooks():
            print(f"wrote {p}")
        return 0
    a = from_namespace(FiguresArgs, ns)
    names = split_list(a.family) or list(FAMILIES)
    unknown = [n for n in names if n not in FAMILIES]
    if unknown:
        raise LiteLVLMError(f"--family: unknown {', '.join(unknown)}; known: {', '.join(FAMILIES)}")
    if a.results is None and not a.smoke:
        raise LiteLVLMError("give --results DIR, or --smoke to make small results with tiny models")
    if a.results is not None and not Path(a.results).is_dir():
        raise LiteLVLMError(f"--results {a.results!r} is not a folder")
    explicit = bool(split_list(a.family))
    written, skipped = [], []
    for name in names:
        fam = FAMILIES[name]
        missing = fam.missing()
        if missing:
            if explicit or not a.smoke:
                fam.check()
            skipped.append(name)
            print(f"figures: skipping {name}: needs {', '.join(missing)} (`{fam.command}`), not available yet")
            continue
        if a.via_notebooks:
            paths = execute_notebook(fam, a.results, a.out, a.smoke, a.model)
        else:
            paths = fam(a.results, a.out, a.smoke, a.model)
        written += paths
        print(f"figures: {name}: " + ", ".join(str(p) for p in paths))
    print(f"figures: wrote {len(written)} files to {a.out}" + (f"; skipped {', '.join(skipped)}" if skipped else ""))
    return 0

