"""One default-model rule for every command: the default ``--model`` runs offline (random weights of the
paper's architecture family, or the bundled toy CLIP), and the help text names the paper's model."""

from __future__ import annotations

import argparse

import pytest

from litelvlm.cli import all_commands, build_parser
from litelvlm.models.model_spec import COMMAND_CLIP_MODEL, DEFAULT_HF_MODEL, ModelSpec
from litelvlm.registry.families import card_of, cards


def _model_action(command: str) -> argparse.Action | None:
    parser = build_parser(only=command)
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return next((a for a in sub.choices[command]._actions if a.dest == "model"), None)


COMMANDS_WITH_MODEL = [c for c in all_commands() if _model_action(c) is not None]


def test_the_commands_with_a_model_are_all_checked():
    assert {"select", "reversal", "sink", "retention", "eval-grounding", "importance", "validate"} <= \
        set(COMMANDS_WITH_MODEL)


@pytest.mark.parametrize("command", COMMANDS_WITH_MODEL)
def test_the_default_model_runs_offline_and_the_help_names_the_papers(command):
    action = _model_action(command)
    default = action.default
    assert default is None or ModelSpec.parse(default).is_random, (command, default)
    if default is not None:  # None: the bundled toy CLIP (demo) or each figure set's own tiny model
        assert default in (COMMAND_CLIP_MODEL, *(c.default_model for c in cards())), (command, default)
        assert f"default: {default}" in action.help and "the paper's" in action.help, action.help
        paper = DEFAULT_HF_MODEL if default == COMMAND_CLIP_MODEL else card_of(default).paper_model
        assert paper in action.help, action.help


# -- the documented tiny models mean something ---------------------------------------------------------------
def _documented_tiny_models() -> list[str]:
    """Every tiny random model string of every registered family that README.md and docs/ offer a user: in
    their code blocks, as ``--model NAME[:SEED]``, or as a loader's ``("NAME[:SEED]")`` (a family whose tiny
    preset they never show: its preset without a seed). Prose that explains a seed (why seed 0 is not the
    default) is no offer."""
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    pages = [p.read_text() for p in [root / "README.md", *sorted((root / "docs").glob("*.md"))]]
    offered = "\n".join(block for page in pages for block in re.findall(r"```.*?```", page, flags=re.S))
    offered += "\n".join(m for page in pages for m in re.findall(r"--model [^\s`]+|\(\"[^\"]+\"\)", page))
    found = []
    for entry in cards():
        for name in (n for n in entry.presets if "tiny" in n):
            shown = re.findall(rf"(?<![\w.-]){re.escape(name)}(:\d+)?(?![\w-])", offered)
            found += [name + seed for seed in dict.fromkeys(shown)] or [name]
    return list(dict.fromkeys(found))


#: the weights they load, each once (``NAME`` is ``NAME:<its default seed>``)
DOCUMENTED_WEIGHTS = list(dict.fromkeys(f"{ModelSpec.parse(m).name}:{card_of(m).seed(m)}"
                                        for m in _documented_tiny_models()))


DOCUMENTED_TINY = _documented_tiny_models()


@pytest.mark.parametrize("model", DOCUMENTED_WEIGHTS)
def test_every_documented_tiny_model_predicts_non_empty_masks_on_the_sample_images(model, coco128):
    """Each family's documented tiny model string (the unpruned model, the first sample image; a video family:
    the image as a 3-frame clip) predicts a non-empty mask: no random gate closed by the documented seed."""
    import numpy as np
    import torch

    from litelvlm.data.refer import load_refer
    from litelvlm.registry.families import load_pipeline

    records = {}
    for r in load_refer(coco128, None, "refcoco", "unc", "val"):
        records.setdefault(r.image_id, r)
    pipe = load_pipeline(model)
    video = card_of(model).input == "video"
    for r in list(records.values())[:1]:
        image = r.image(True)
        prep = pipe.prepare([np.asarray(image)] * 3 if video else image, [r.sentence])
        with torch.no_grad():
            masks = pipe.ground(prep, "none", None).masks
        assert masks.any(), (model, r.image_id)


def test_the_tiny_unipixel_without_a_seed_takes_the_seed_that_opens_its_gate():
    """``unipixel-tiny-random`` means ``unipixel-tiny-random:5`` (seed 0 closes SAM 2's object-score gate);
    every other preset's default seed stays 0, and the documented strings name no closed seed."""
    seed = [card_of(m).seed(m) for m in ("unipixel-tiny-random", "unipixel-tiny-random:0", "tiny-random",
                                         "videoglamm-tiny-random", "sa2va-tiny-random")]
    assert seed == [5, 0, 0, 0, 0]
    assert "unipixel-tiny-random:0" not in DOCUMENTED_TINY and "unipixel-tiny-random:5" in DOCUMENTED_TINY
