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
from PIL import Image

from litelvlm.cli_args import MethodFlags, add_dataclass_arguments, from_namespace
from litelvlm.errors import LiteLVLMError
from litelvlm.method import Method
from litelvlm.method_stage import (
    CLIP_STAGE,
    INPUT_STAGE,
    LAYER_STAGE,
    STAGE_OBJECTS,
    STAGES,
    STAGES_STAGE,
    TOWER_STAGE,
    Stage,
    clip_step,
    llm_step,
    tower_step,
)
from litelvlm.methods import TABLE, get_method, method_names, method_option_list, method_options

LIB = Path(__file__).resolve().parents[2] / "litelvlm"


def test_every_method_holds_a_stage_value_with_typed_answers():
    stages = {"clip": CLIP_STAGE, "llm-input": INPUT_STAGE, "llm-layer": LAYER_STAGE,
              "llm-stages": STAGES_STAGE, "vision-tower": TOWER_STAGE}
    assert STAGE_OBJECTS == stages and set(STAGES) == set(stages)
    for name in method_names():
        m = get_method(name)
        assert m.stage is stages[m.stage.name] and isinstance(m.stage, Stage), name
        assert m.acts_on_clip == (m.stage.name == "clip") != m.acts_with_llm
        assert m.selects_at_llm_input == (m.stage.name == "llm-input")
        assert m.prunes_inside_llm == (m.stage.name in ("llm-layer", "llm-stages")) == (m.forward is not None)
        assert m.prunes_at_one_layer == (m.stage.name == "llm-layer")
        assert m.prunes_in_vision_tower == (m.stage.name == "vision-tower")
        assert m.kind == m.stage.kind == ("clip" if m.acts_on_clip else "llm")
    # tables: the name, read where it is written
    assert str(get_method("fastv").stage) == "llm-layer" and f"{get_method('litelvlm').stage}" == "clip"
    assert pickle.loads(pickle.dumps(get_method("fastv"))).stage is LAYER_STAGE
    assert Method("llm-input", print).stage is INPUT_STAGE and Method(CLIP_STAGE, print).stage is CLIP_STAGE
    with pytest.raises(ValueError, match="stage must be one of"):
        Stage("llm", llm_step)


def test_a_stage_is_a_frozen_value_not_a_string():
    """A stage is what it says: a frozen dataclass holding the function that runs it, not a name posing as
    text (it equals no string; a table writes its ``name``)."""
    assert dataclasses.is_dataclass(Stage) and Stage.__dataclass_params__.frozen
    assert not isinstance(CLIP_STAGE, str) and CLIP_STAGE != "clip" and CLIP_STAGE.name == "clip"
    with pytest.raises(dataclasses.FrozenInstanceError):
        CLIP_STAGE.name = "llm-input"
    assert [s.step for s in STAGE_OBJECTS.values()] == [clip_step, llm_step, llm_step, llm_step, tower_step]
    assert all(inspect.isfunction(s.step) for s in STAGE_OBJECTS.values())


def test_ground_calls_the_methods_stage_object(tiny_glamm, tiny_glamm_prep, monkeypatch):
    """``ground`` runs each method's stage function (``Stage.step``, bound by ``Stage.step_of``, never a name
    looked up); ``Stage.run`` calls the same step."""
    seen = []
    for step in ("run_clip_stage", "run_llm_stage"):
        run = getattr(type(tiny_glamm), step)
        monkeypatch.setattr(type(tiny_glamm), step,
                            lambda self, *a, _run=run, _step=step,
                            **kw: seen.append(_step) or _run(self, *a, **kw))
    for method in ("litelvlm", "none", "fastv"):
        tiny_glamm.ground(tiny_glamm_prep, method, 8 if method != "none" else None)
    assert seen == ["run_clip_stage", "run_llm_stage", "run_llm_stage"]
    bound = [s.step_of(tiny_glamm) for s in (CLIP_STAGE, INPUT_STAGE, LAYER_STAGE)]
    assert [(b.func, b.args) for b in bound] == [(clip_step, (tiny_glamm,)), (llm_step, (tiny_glamm,)),
                                                (llm_step, (tiny_glamm,))]


def test_options_are_declared_with_the_method_and_default_as_its_select():
    declared = {name: get_method(name).options for name in TABLE if get_method(name).options}
    assert sorted(declared) == ["divprune+random-deep", "fastv", "ipcv", "ipcv+dart", "ipcv+fastv",
                                "llm-attention", "random-deep", "v2drop", "vitcop"]
    for name, options in declared.items():
        m = get_method(name)
        params = inspect.signature(m.select).parameters
        for opt in options:
            assert params[opt.name].default == opt.default, (name, opt)
            assert opt.flag == "--" + opt.dest.replace("_", "-") and opt.help
    assert [o.dest for o in method_option_list()] == [
        "random_deep_layer", "random_deep_ratio", "fastv_layer", "ipcv_layer", "ipcv_as_layers", "ipcv_top_k",
        "ipcv_llm_layer", "attention_layer", "attention_queries", "v2drop_layers", "v2drop_ratios",
        "vitcop_vision_ratio", "vitcop_cluster_percentage", "vitcop_shallow_layer", "vitcop_deep_layer"]


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



def _where_said(name: str, capsys, out: Path) -> dict[str, str]:
    """{where: the words} of every refusal that says where a non-CLIP method acts: the CLIP-side selection
    contract, the explorer without a grounding model, the ``retention`` and ``select`` commands on a CLIP
    model."""
    from litelvlm.cli import main
    from litelvlm.explore.data import _methods
    from litelvlm.pruning.run import check_selector

    said = {}
    for where, call in (("selection", lambda: check_selector(get_method(name), None)),
                        ("explore", lambda: _methods(None, [name]))):
        with pytest.raises(LiteLVLMError) as err:
            call()
        said[where] = str(err.value)
    capsys.readouterr()
    Image.new("RGB", (8, 8)).save(out / "none.png")
    for command in (["retention", "--methods", name, "--out", str(out)],
                    ["select", "--method", name, "--image", str(out / "none.png"), "--budget", "4"]):
        assert main([*command, "--model", "tiny336-random"]) == 2
        said[command[0]] = capsys.readouterr().err
    return said


@pytest.mark.parametrize("name", [m for m in method_names() if not get_method(m).acts_on_clip])
def test_a_refusal_says_where_the_method_acts(name, capsys, tmp_path):
    """A method acting with the grounding model is refused where only CLIP runs in words true of where it acts
    (:attr:`Method.where`): a vision-tower method is not said to run inside the LLM."""
    spec = get_method(name)
    for where, words in _where_said(name, capsys, tmp_path).items():
        assert spec.where in words, (where, words)
        if spec.uses_vision_tower:
            assert "vision tower" in words, (where, words)
        if spec.prunes_in_vision_tower:
            assert "inside the LLM" not in words, (where, words)
    with pytest.raises(ValueError, match="say where its methods act"):
        Stage("clip", clip_step, acts_on_clip=True)
    assert get_method("ipcv").where == "inside the vision tower"
    assert get_method("ipcv+fastv").where == "inside the vision tower and inside the LLM"
    assert get_method("fastv").where == "inside the LLM"
    assert get_method("cdpruner").where == "at the LLM's input"
