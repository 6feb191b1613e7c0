"""The library API says when it loads random weights (issue #67, item 8): one warning per process and model
(``load_clip("tiny336-random")``, ``GlammPipeline.from_model_string("tiny-random:0")``), none inside a
``litelvlm`` command (which prints its own banner); ``select --json`` carries a ``weights`` field."""

from __future__ import annotations

import json
import subprocess
import sys
import warnings

import pytest

from litelvlm.cli import main
from litelvlm.clip import load_clip
from litelvlm.glamm import GlammPipeline
from litelvlm.models import random_models
from litelvlm.models.random_models import RandomWeightsWarning


@pytest.fixture
def fresh(monkeypatch):
    monkeypatch.setattr(random_models, "_WARNED", set())


def _random_warnings(caught) -> list[str]:
    return [str(w.message) for w in caught if issubclass(w.category, RandomWeightsWarning)]


def test_load_clip_of_a_random_model_warns_once(fresh):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        load_clip("tiny336-random")
        load_clip("tiny336-random")
    (message,) = _random_warnings(caught)
    assert "RANDOM WEIGHTS" in message and "tiny336-random" in message and "not findings" in message


def test_a_glamm_pipeline_of_random_weights_warns(fresh):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        GlammPipeline.from_model_string("tiny-random:0")
    assert any("glamm-tiny-seed0 has RANDOM WEIGHTS" in m for m in _random_warnings(caught))


def test_a_command_does_not_warn_and_select_json_names_the_weights(fresh, capsys, coco128):
    image = str(next((coco128 / "images").glob("*.jpg")))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert main(["select", "--model", "tiny336-random", "--image", image, "--text", "a cup", "--budget",
                     "5", "--json"]) == 0
    assert _random_warnings(caught) == []
    assert json.loads(capsys.readouterr().out)["weights"] == "random"


def test_the_warnings_category_lives_in_a_module_that_loads_no_torch():
    """Whatever names the category imports its module: a warnings filter (``-W``, pytest's
    ``filterwarnings``) and pytest-xdist's controller, for each warning a worker reports. That module loads no
    torch (it was ``litelvlm.models.random_models``: the controller imported torch mid-run)."""
    module = RandomWeightsWarning.__module__
    code = f"import importlib, sys; importlib.import_module({module!r}); print('torch' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["False"], f"importing {module} loads torch"
