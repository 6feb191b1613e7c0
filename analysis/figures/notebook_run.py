"""Running a figure set's notebook top to bottom through a Jupyter kernel (papermill), with
this interpreter as the kernel: the route of ``litelvlm figures --via-notebooks`` and of the
test that checks the notebooks write the same files as the command."""

from __future__ import annotations

import hashlib
import json
import os
import sys
import tempfile
from pathlib import Path

from analysis.common.presentation.figure_set import FigureSet
from analysis.figures.notebook_gen import NOTEBOOK_DIR, notebook_path
from analysis.figures.output import figure_files
from litelvlm.errors import LiteLVLMError
from litelvlm.machine.optional import optional_import
from litelvlm.runs.io import copy_file


def kernel_name() -> str:
    """A Jupyter kernel that runs this interpreter: registered (once) in a private folder on JUPYTER_PATH."""
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


def execute_notebook(figure_set: FigureSet, results_dir, out_dir, smoke: bool, model: str | None = None,
                     notebook_dir: str | os.PathLike = NOTEBOOK_DIR,
                     executed: str | os.PathLike | None = None, timeout: int = 600) -> list[Path]:
    """Run ``figure_set``'s notebook with papermill (this interpreter as kernel, ``RESULTS``, ``SMOKE``,
    ``MODEL`` as given) into a folder of its own, then copy the figures it wrote into ``out_dir`` (through the
    transaction of ``out_dir``'s run when one holds it, as the command writes); returns the copies."""
    nb = notebook_path(figure_set, notebook_dir)
    if not nb.exists():
        raise LiteLVLMError(f"notebook {str(nb)!r} does not exist; run `litelvlm figures --write-notebooks`")
    papermill = optional_import("papermill")
    with tempfile.TemporaryDirectory(prefix=f"litelvlm-{figure_set.name}-") as tmp:
        own = Path(tmp) / "out"   # the notebook's own run folder (``out_dir``'s may be held by this process)
        params = {"RESULTS": None if results_dir is None else str(Path(results_dir).resolve()),
                  "MODEL": model, "SMOKE": bool(smoke), "OUT": str(own)}
        papermill.execute_notebook(str(nb), str(executed or Path(tmp) / nb.name), parameters=params,
                                   kernel_name=kernel_name(), cwd=str(nb.parent), progress_bar=False,
                                   execution_timeout=timeout)
        paths = []
        for path in figure_files(own, [figure_set.name]):
            paths.append(Path(out_dir).resolve() / path.name)
            copy_file(path, paths[-1])
    return paths
