"""litelvlm/lvlm/method_plan.py: the one rule by which every study and every video path plans its methods on
a loaded model (named ones refused together, the default ones left out with the same words)."""

from __future__ import annotations

import logging
from types import SimpleNamespace

import pytest

from analysis.common.grounding.method_choice import study_methods
from litelvlm.errors import LiteLVLMError
from litelvlm.lvlm.method_plan import layer_refusals, planned_methods, refusals
from litelvlm.unipixel.video_runner import UniPixelRunner


def test_a_study_and_a_video_path_leave_out_and_refuse_by_one_rule(tiny_unipixel_pipe, caplog):
    """On the 2-layer tiny UniPixel, IPCV + DART's official layer 3 lies past the decoder: a study's default
    methods and the video path's leave it out with the same warning, and both refuse it named with the same
    error."""
    pipe, candidates = tiny_unipixel_pipe, ["fastv", "ipcv+dart"]
    with caplog.at_level(logging.WARNING):
        study = study_methods(pipe, [], SimpleNamespace(), keep=lambda m: m in candidates)
        said = [r.getMessage() for r in caplog.records]
        caplog.clear()
        planned = UniPixelRunner.plan_methods(SimpleNamespace(pipe=pipe), [], [])
        video = [m for m in planned if m in candidates]
        said_video = [r.getMessage() for r in caplog.records if "ipcv+dart's" in r.getMessage()]
    assert study == video == ["fastv"]
    assert said == said_video == [
        "ipcv+dart left out of the default methods: --ipcv-llm-layer 3: ipcv+dart's layer must be in 1..2 "
        "for this model (2 decoder layers)"]
    errors = []
    for plan in (lambda: study_methods(pipe, ["ipcv+dart"], SimpleNamespace()),
                 lambda: planned_methods(["ipcv+dart"], candidates, layer_refusals(pipe, candidates))):
        with pytest.raises(LiteLVLMError) as e:
            plan()
        errors.append(str(e.value))
    assert errors[0] == errors[1]


def test_refusals_give_the_familys_reason_before_the_layers():
    """A method the family refuses is refused for that reason alone; one it runs, for each layer option out
    of the decoder's range (the option's default where the arguments give none)."""
    class Pipe:
        language_model = SimpleNamespace(config=SimpleNamespace(num_hidden_layers=2))

        def method_error(self, m):
            return "flowcut needs a [CLS] token" if m == "flowcut" else None

        def spec(self, m):
            from litelvlm.methods import get_method
            return get_method(m)

    got = refusals(Pipe(), ["flowcut", "fastv", "ipcv+dart"], SimpleNamespace(ipcv_llm_layer=2))
    assert got == {"flowcut": "flowcut needs a [CLS] token"}
    deep = refusals(Pipe(), ["ipcv+dart"], SimpleNamespace(ipcv_llm_layer=3))
    assert list(deep) == ["ipcv+dart"] and "1..2" in deep["ipcv+dart"]
    assert layer_refusals(Pipe(), ["ipcv+dart"]) == refusals(Pipe(), ["ipcv+dart"], None)
