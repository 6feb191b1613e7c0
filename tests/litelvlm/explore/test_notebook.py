"""``notebooks/00_explore.ipynb``: generated from :mod:`litelvlm.explore.notebook`, stripped, with a
parameters cell, and its code opens the explorer on the sample toy scene (run in this process; a real kernel
with ``-m slow``)."""

from __future__ import annotations

import ast
import json
import tempfile
from pathlib import Path

import pytest

from litelvlm.explore import notebook

PATH = Path(__file__).resolve().parents[3] / notebook.NOTEBOOK


def test_the_committed_notebook_is_the_generated_one_and_stripped():
    assert PATH.read_text() == notebook.notebook_text(), "run litelvlm.explore.notebook.write_notebook('.')"
    nb = json.loads(PATH.read_text())
    assert all(not c.get("outputs") and c.get("execution_count") is None for c in nb["cells"]
               if c["cell_type"] == "code")
    tagged = [c for c in nb["cells"] if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(tagged) == 1
    names = {t.id for node in ast.parse("".join(tagged[0]["source"])).body for t in node.targets}
    assert names == {"IMAGE", "TEXTS", "MODEL", "METHODS"}


def test_the_notebook_opens_the_explorer_on_a_sample_image(one_glamm_pipeline, tmp_path, monkeypatch):
    from litelvlm.explore.widget import Explorer

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))   # where the notebook writes its sample scene
    scope: dict = {}
    nb = json.loads(PATH.read_text())
    for cell in nb["cells"]:
        if cell["cell_type"] == "code":
            exec(compile("".join(cell["source"]), str(PATH), "exec"), scope)
    ex = scope["explorer"]
    assert Path(scope["IMAGE"]).is_relative_to(tmp_path)   # the sample scene is the test's, not left behind
    assert isinstance(ex, Explorer) and ex.data.referent[0] is not None and ex.data.banner
    assert "application/vnd.jupyter.widget-view+json" in ex._repr_mimebundle_()
    ex.budget.value = 32
    assert "K = 32 of N = 576" in ex.caption.value


@pytest.mark.slow
def test_the_notebook_runs_in_a_kernel(tmp_path, monkeypatch):
    import papermill

    monkeypatch.setenv("TMPDIR", str(tmp_path))   # the kernel writes its sample scene under the test's folder
    papermill.execute_notebook(str(PATH), str(tmp_path / "run.ipynb"), kernel_name="python3",
                               progress_bar=False)
    assert b'"output_type": "error"' not in (tmp_path / "run.ipynb").read_bytes()
