"""A method is a typed unit: the pipeline calls its stage object, nothing branches on a method's name, stage
or kind, and its options are declared by the method (the registry's row) and become command-line flags."""

from __future__ import annotations

import argparse
import dataclasses
import inspect
import pickle
from pathlib import Path
from types import SimpleNamespace

import pytest

from litelvlm.cli_args import MethodFlags, add_dataclass_arguments, from_namespace
from litelvlm.errors import LiteLVLMError
from litelvlm.method import Method
from litelvlm.method_stage import (
    STAGE_TYPES,
    STAGES,
    ClipStage,
    InputStage,
    LayerStage,
    Stage,
    StagesStage,
    TowerStage,
)
from litelvlm.methods import TABLE, get_method, method_names, method_option_list, method_options

LIB = Path(__file__).resolve().parents[2] / "litelvlm"


def test_every_method_holds_a_stage_object_with_typed_answers():
    kinds = {"clip": ClipStage, "llm-input": InputStage, "llm-layer": LayerStage, "llm-stages": StagesStage,
             "vision-tower": TowerStage}
    assert set(STAGE_TYPES) == set(STAGES) == set(kinds)
    for name in method_names():
        m = get_method(name)
        assert type(m.stage) is kinds[m.stage] and isinstance(m.stage, Stage), name
        assert m.acts_on_clip == (m.stage == "clip") != m.acts_with_llm
        assert m.selects_at_llm_input == (m.stage == "llm-input")
        assert m.prunes_inside_llm == (m.stage in ("llm-layer", "llm-stages")) == (m.forward is not None)
        assert m.prunes_at_one_layer == (m.stage == "llm-layer")
        assert m.prunes_in_vision_tower == (m.stage == "vision-tower")
        assert m.kind == m.stage.kind == ("clip" if m.acts_on_clip else "llm")
    # tables
    assert str(get_method("fastv").stage) == "llm-layer" and f"{get_method('litelvlm').stage}" == "clip"
    assert pickle.loads(pickle.dumps(get_method("fastv"))).stage is STAGE_TYPES["llm-layer"]
    assert Method(InputStage(), print).stage is STAGE_TYPES["llm-input"]
    with pytest.raises(ValueError, match="ClipStage is stage 'clip'"):
        ClipStage("llm-input")


def test_ground_calls_the_methods_stage_object(tiny_glamm, tiny_glamm_prep, monkeypatch):
    """``ground`` hands each method to the pipeline's step its own stage gives (``Stage.step_of``, a
    function, never a name); ``Stage.run`` calls the same step."""
    seen = []
    for step in ("run_clip_stage", "run_llm_stage"):
        run = getattr(type(tiny_glamm), step)
        monkeypatch.setattr(type(tiny_glamm), step,
                            lambda self, *a, _run=run, _step=step,
                            **kw: seen.append(_step) or _run(self, *a, **kw))
    for method in ("litelvlm", "none", "fastv"):
        tiny_glamm.ground(tiny_glamm_prep, method, 8 if method != "none" else None)
    assert seen == ["run_clip_stage", "run_llm_stage", "run_llm_stage"]
    assert [s().step_of(tiny_glamm).__func__ for s in (ClipStage, InputStage, LayerStage)] == [
        type(tiny_glamm).run_clip_stage, type(tiny_glamm).run_llm_stage, type(tiny_glamm).run_llm_stage]


def test_options_are_declared_with_the_method_and_default_as_its_select():
    declared = {name: get_method(name).options for name in TABLE if get_method(name).options}
    assert sorted(declared) == ["divprune+random-deep", "fastv", "llm-attention", "random-deep", "v2drop",
                                "vitcop"]
    for name, options in declared.items():
        m = get_method(name)
        params = inspect.signature(m.select).parameters
        for opt in options:
            assert params[opt.name].default == opt.default, (name, opt)
            assert opt.flag == "--" + opt.dest.replace("_", "-") and opt.help
    assert [o.dest for o in method_option_list()] == ["random_deep_layer", "random_deep_ratio", "fastv_layer",
                                                      "attention_layer", "attention_queries", "v2drop_layers",
                                                      "v2drop_ratios", "vitcop_vision_ratio",
                                                      "vitcop_cluster_percentage", "vitcop_shallow_layer",
                                                      "vitcop_deep_layer"]


def test_the_command_line_builds_every_methods_flags_from_the_registry():
    @dataclasses.dataclass
    class StudyArgs(MethodFlags):
        out: str = "runs"

    parser = argparse.ArgumentParser(prog="study")
    add_dataclass_arguments(parser, StudyArgs)
    a = from_namespace(StudyArgs, parser.parse_args(["--fastv-layer", "3", "--attention-queries", "text"]))
    assert (a.fastv_layer, a.attention_layer, a.attention_queries, a.out) == (3, None, "text", "runs")
    assert "FastV's K" in parser.format_help()
    with pytest.raises(SystemExit):
        parser.parse_args(["--attention-queries", "all"])  # its declared choices
    # a study gets every selected method's options without naming one
    assert method_options(a, ["none", "fastv", "llm-attention", "litelvlm"]) == {
        "none": {}, "fastv": {"layer": 3}, "llm-attention": {"queries": "text"}, "litelvlm": {}}
    assert get_method("fastv").settings(SimpleNamespace()) == {"layer": 2}  # what a run records: the default
    assert get_method("llm-attention").settings(a) == {"layer": None, "queries": "text"}


def test_a_token_schedule_takes_the_methods_options_dict():
    """The efficiency study's plan: the method's own options from a dict, the budget counted once, no option
    named."""
    from litelvlm.budget import Budget

    args = SimpleNamespace(fastv_layer=3, attention_layer=None, attention_queries="seg")
    opts = method_options(args, ["fastv", "none", "litelvlm"])
    assert get_method("fastv").token_schedule(Budget(64), 576, 32, opts["fastv"]) == ((0, 576), (3, 64))
    assert get_method("fastv").token_schedule(64, 576, 32) == ((0, 576), (2, 64))  # its own default K
    assert get_method("none").token_schedule(Budget(64), 576, 32) == ((0, 576),)  # the baseline keeps all N
    assert get_method("litelvlm").token_schedule(Budget.ALL, 576, 32, {"layer": 3}) == ((0, 576),)
    with pytest.raises(LiteLVLMError, match="1 <= K <= 576"):
        get_method("litelvlm").token_schedule(577, 576, 32)
