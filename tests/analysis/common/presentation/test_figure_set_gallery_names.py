"""The committed gallery (``figures/``, made by ``litelvlm figures --smoke``): every file carries the figure
set and the family and model of the runs it comes from (``<figure set>_<family>-<model>_<figure>``, as the
``--results`` route names them), and every figure docs/figures.md shows is committed."""

from __future__ import annotations

import re
from pathlib import Path

from analysis.common.presentation.figure_set import runs_name
from analysis.common.runs.identity import CLIP_FAMILY, identity_tag
from analysis.figures.registry import FIGURE_SETS
from litelvlm.registry.families import family_names

ROOT = Path(__file__).resolve().parents[4]
GALLERY = ROOT / "figures"


def _figure_family(name: str) -> str:
    """The figure set a file name starts with (the longest that matches: ``reversal_grid`` before
    ``reversal``)."""
    return next(f for f in sorted(FIGURE_SETS, key=len, reverse=True) if name.startswith(f + "_"))


def test_every_gallery_figure_names_its_figure_family_and_its_runs_family_and_model():
    files = sorted(p.name for p in GALLERY.glob("*.png"))
    assert files
    models = (*family_names(), CLIP_FAMILY)
    for name in files:
        rest = name[len(_figure_family(name)) + 1:]
        assert any(rest.startswith(f"{family}-") for family in models), name


def test_the_smoke_route_names_files_as_the_results_route():
    ident = {"study": "grounding", "family": "glamm", "model": "tiny-random:0", "weights": "random"}
    prefix, label = runs_name("grounding", [ident])
    assert prefix == f"grounding_{identity_tag(ident)}" == "grounding_glamm-tiny-random-0"
    assert label == "glamm/tiny-random:0" and runs_name("grounding", []) == ("grounding", None)


def test_every_figure_the_docs_show_is_committed():
    shown = re.findall(r"\.\./figures/([^)\s]+\.png)", (ROOT / "docs" / "figures.md").read_text())
    assert shown
    missing = [name for name in shown if not (GALLERY / name).is_file()]
    assert not missing, missing
