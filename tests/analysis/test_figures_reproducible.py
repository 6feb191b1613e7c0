"""Reruns write the same bytes, and a command run without ``--out`` never writes into the committed folders:
``litelvlm figures --smoke`` twice (the cheap ``sink`` family), ``litelvlm demo --smoke`` twice, and where a
notebook's ``OUT = None`` goes."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from litelvlm.cli import main


def _files(folder: Path) -> dict[str, bytes]:
    """The result files of ``folder`` (the run's lock, which names the process that held it, aside)."""
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()
            and not p.name.startswith(".")}


def _same_bytes(a: Path, b: Path) -> None:
    fa, fb = _files(a), _files(b)
    assert sorted(fa) == sorted(fb)
    assert [n for n in fa if fa[n] != fb[n]] == [], "files that differ between two runs"


def test_figures_smoke_twice_gives_the_same_bytes_and_leaves_the_committed_folder_alone(
        smoke_figures, tmp_path, monkeypatch):
    # `litelvlm figures --smoke --figure-set sink --out DIR`, shared with other tests
    first = smoke_figures("sink")
    committed = tmp_path / "figures"  # a checkout's committed gallery, run from the repository root
    committed.mkdir()
    (committed / "sink_example.png").write_bytes(b"committed")
    monkeypatch.chdir(tmp_path)
    assert main(["figures", "--smoke", "--figure-set", "sink"]) == 0  # no --out: a new folder, not figures/
    assert _files(committed) == {"sink_example.png": b"committed"}
    second = tmp_path / "litelvlm-figures"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["figures", "litelvlm-figures"]
    assert any(n.endswith(".png") for n in _files(second)) and any(n.endswith(".pdf") for n in _files(second))
    _same_bytes(first, second)
    for png in second.glob("*.png"):  # fixed metadata: no matplotlib version, no date
        with Image.open(png) as im:
            assert im.text == {"Software": "litelvlm"}, png.name


@pytest.mark.slow  # heavy: the default suite keeps a lighter case of the same rule
def test_demo_smoke_twice_into_two_folders_gives_the_same_bytes(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    for out in (a, b):
        assert main(["demo", "--smoke", "--n-boot", "50", "--out", str(out)]) == 0
    names = sorted(_files(a))
    assert {"demo_summary.json", "selection.csv", "sink_summary.csv", "selection_overlay.png"} <= set(names)
    _same_bytes(a, b)  # figures, tables and demo_summary.json (no run time, no --out path in it)


def test_a_notebooks_default_out_is_its_own_absolute_folder_whatever_the_working_directory(
    tmp_path, monkeypatch):
    """A notebook run with ``OUT = None`` writes into its own folder (``notebooks/out/<family>``, ignored by
    git), the same whatever the working directory, never a folder other processes share
    (``/tmp/litelvlm-figures``) nor the committed figures."""
    import subprocess

    from analysis.common.presentation.figure_set import OUT_ENV, notebook_out_dir
    from analysis.figures.notebook_gen import make_notebook
    from analysis.figures.options import FiguresArgs
    from analysis.figures.registry import FIGURE_SETS

    assert FiguresArgs().out == "litelvlm-figures"  # the command's default: never the committed figures/
    repo = Path(__file__).resolve().parents[2]
    monkeypatch.delenv(OUT_ENV, raising=False)
    for fam in FIGURE_SETS.values():
        params = next(c for c in make_notebook(fam).cells if "parameters" in c.metadata.get("tags", []))
        namespace: dict = {}
        exec(params.source, namespace)
        assert namespace["OUT"] is None, fam.notebook  # not a path relative to the kernel's working directory
        assert "/tmp" not in params.source and f"notebooks/out/{fam.name}/" in params.source
        monkeypatch.chdir(tmp_path)
        here = notebook_out_dir(fam.name)
        monkeypatch.chdir(tmp_path.parent)
        assert notebook_out_dir(fam.name) == here == repo / "notebooks" / "out" / fam.name
    # one folder each
    assert len({notebook_out_dir(f.name) for f in FIGURE_SETS.values()}) == len(FIGURE_SETS)
    ignored = subprocess.run(["git", "check-ignore", "-q", "notebooks/out/efficiency/x.png"], cwd=repo)
    assert ignored.returncode in (0, 128)  # ignored by git (128: not a git checkout)
    for nb in (repo / "notebooks").glob("*.ipynb"):
        assert "litelvlm-figures" not in nb.read_text() and "gettempdir" not in nb.read_text(), nb.name
    monkeypatch.setenv(OUT_ENV, str(tmp_path / "mine"))
    assert notebook_out_dir("efficiency") == tmp_path / "mine" / "efficiency"
