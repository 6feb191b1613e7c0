"""A family's abilities (``litelvlm.lvlm.abilities``) across its pipeline classes: a pipeline derived from
another (a video path, another backbone) refuses what its parent refuses, unless it says why not."""

from __future__ import annotations

import importlib
import pkgutil

import litelvlm
from litelvlm.lvlm.family import GroundingPipeline

#: (derived pipeline, parent, refusal key) a derived pipeline drops on purpose: why (none does)
DROPPED: dict[tuple[str, str, str], str] = {}


def _pipelines() -> list[type]:
    for mod in pkgutil.walk_packages(litelvlm.__path__, "litelvlm."):
        if mod.name.rsplit(".", 1)[-1].endswith("pipeline"):
            importlib.import_module(mod.name)
    out, todo = [], [GroundingPipeline]
    while todo:
        for sub in todo.pop().__subclasses__():
            out.append(sub)
            todo.append(sub)
    return out


def test_a_derived_pipeline_refuses_what_its_parent_refuses():
    pipelines = _pipelines()
    assert {"UniPixelVideoPipeline", "UniPixelPipeline", "Sa2VAPipeline"} <= {p.__name__ for p in pipelines}
    dropped = set()
    for child in pipelines:
        parent = child.__mro__[1]
        if parent is GroundingPipeline or not issubclass(parent, GroundingPipeline):
            continue
        for key in set(parent.abilities.refuses) - set(child.abilities.refuses):
            dropped.add((child.__name__, parent.__name__, key))
    assert dropped == set(DROPPED), f"refusals a derived pipeline dropped: {sorted(dropped - set(DROPPED))}"


def test_unipixels_video_path_offers_no_method_its_tower_cannot_run():
    from litelvlm.unipixel.video_eval import method_error, offered_methods

    assert "flowcut" not in offered_methods()
    assert "[CLS]" in method_error("flowcut")
