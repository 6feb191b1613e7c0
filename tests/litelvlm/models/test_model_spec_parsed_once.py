"""A model string is read once: at the command line (argparse ``type=``), then it travels as a
:class:`litelvlm.models.model_spec.ModelSpec` down to the family's loader; library entry points convert a
Python caller's str once, at their edge (:meth:`ModelSpec.of`)."""

from __future__ import annotations

import copy
import json
import pickle

import pytest

import analysis.grounding.compute as grounding_compute
from litelvlm.cli import main
from litelvlm.models.model_spec import ModelSpec
from litelvlm.registry.resolved_model import ResolvedModel


class _Loaded(Exception):
    """Raised right after the command's route has loaded the model."""


def _parses_while_loading(monkeypatch, argv: list[str]) -> list[str]:
    """Every string :meth:`ModelSpec.parse` reads from the command line's start until the model is loaded."""
    read: list[str] = []
    parse = ModelSpec.parse.__func__

    def counting(cls, model):
        read.append(str(model))
        return parse(cls, model)

    def load_then_stop(model, **options):
        # the parsed value travels, resolved (a frozen value holding its spec), not the text
        assert isinstance(model, ResolvedModel) and isinstance(model.spec, ModelSpec), type(model)
        pipe = real_load(model, **options)
        assert pipe.name == model.text and type(pipe.name) is str   # the pipeline names it by its text
        raise _Loaded

    real_load = grounding_compute.load_pipeline
    monkeypatch.setattr(ModelSpec, "parse", classmethod(counting))
    monkeypatch.setattr(grounding_compute, "load_pipeline", load_then_stop)
    with pytest.raises(_Loaded):
        main(argv)
    return read


@pytest.mark.parametrize("model", ["tiny-random:0", "sa2va-tiny-random:0"])
def test_the_command_line_reads_the_model_string_once(model, coco128, tmp_path, monkeypatch):
    """``eval-grounding --model M`` reads M once (argparse), and no other model string is read twice on the
    way to the loaded pipeline (the CLIP paired with the model included)."""
    read = _parses_while_loading(monkeypatch, ["eval-grounding", "--refer-dir", str(coco128), "--out",
                                               str(tmp_path / "out"), "--model", model, "--limit-images",
                                               "1"])
    assert read.count(model) == 1, read
    assert len(read) == len(set(read)), read


def test_a_python_caller_converts_once():
    spec = ModelSpec.parse("sa2va-tiny-random:3")
    assert ModelSpec.of(spec) is spec and ModelSpec.of("tiny-random").name == "tiny-random"
    assert (spec.name, spec.rest, spec.text) == ("sa2va-tiny-random", "3", "sa2va-tiny-random:3")


def test_a_model_spec_is_its_text_wherever_a_string_goes():
    """Results stay as they were: a spec writes, compares, hashes, copies and pickles as its text."""
    spec = ModelSpec.parse("local-dir:/m/clip")
    assert spec == "local-dir:/m/clip" and hash(spec) == hash(
        "local-dir:/m/clip") and f"{spec!r}" == "'local-dir:/m/clip'"
    assert json.dumps({"model": spec}) == json.dumps({"model": "local-dir:/m/clip"})
    for twin in (copy.deepcopy(spec), pickle.loads(pickle.dumps(spec))):
        assert isinstance(twin, ModelSpec) and (twin, twin.name, twin.local_dir) == (
            spec, "local-dir", "/m/clip")
