"""analysis/common/grounding/method_choice.py: a study's default methods are those the loaded model can run
with their layer options; a named one the model cannot run is refused before anything is written."""

from __future__ import annotations

import logging
from types import SimpleNamespace

import pytest

from analysis.common.grounding.method_choice import study_methods
from litelvlm.cli import main
from litelvlm.errors import LiteLVLMError
from litelvlm.lvlm.method_plan import refusals


def test_default_methods_fit_the_models_layers_and_named_ones_are_refused(tiny_unipixel_pipe, caplog):
    """The tiny UniPixel has 2 decoder layers: IPCV + DART's official layer 3 leaves it out of the default
    methods (a warning names the option), and named it is refused with the same reason."""
    args = SimpleNamespace(ipcv_llm_layer=3, fastv_layer=2)
    with caplog.at_level(logging.WARNING):
        methods = study_methods(tiny_unipixel_pipe, [], args)
    assert "ipcv+dart" not in methods and {"fastv", "ipcv", "litelvlm"} <= set(methods)
    assert "ipcv+dart left out of the default methods: --ipcv-llm-layer 3" in caplog.text
    assert study_methods(tiny_unipixel_pipe, [], SimpleNamespace(ipcv_llm_layer=1)).count("ipcv+dart") == 1
    assert refusals(tiny_unipixel_pipe, ["fastv", "ipcv+dart"], args) == {
        "ipcv+dart": "--ipcv-llm-layer 3: ipcv+dart's layer must be in 1..2 for this model (2 decoder "
                     "layers)"}
    with pytest.raises(LiteLVLMError, match=r"ipcv\+dart's layer must be in 1\.\.2"):
        study_methods(tiny_unipixel_pipe, ["ipcv+dart"], args)


def test_positions_refuses_a_layer_the_model_lacks_before_writing(coco128, tmp_path, capsys):
    """``positions`` named a method whose layer the model lacks: exit 2 naming it, no folder (it failed
    part-way through the runs before)."""
    out = tmp_path / "pos"
    rc = main(["positions", "--model", "unipixel-tiny-random:0", "--refer-dir", str(coco128), "--methods",
               "ipcv+dart", "--budgets", "16", "--out", str(out)])
    assert rc == 2 and "ipcv+dart's layer must be in 1..2" in capsys.readouterr().err
    assert not out.exists()
