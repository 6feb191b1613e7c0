"""One default-model rule for every command: the default ``--model`` runs offline (random weights of the
paper's architecture family, or the bundled toy CLIP), and the help text names the paper's model."""

from __future__ import annotations

import argparse

import pytest

from litelvlm.cli import all_commands, build_parser
from litelvlm.model_spec import (
    COMMAND_CLIP_MODEL,
    COMMAND_GLAMM_MODEL,
    COMMAND_VIDEOGLAMM_MODEL,
    DEFAULT_HF_MODEL,
    ModelSpec,
)


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
    if default is not None:  # None: the bundled toy CLIP (demo) or each figure family's own tiny model
        assert default in (COMMAND_CLIP_MODEL, COMMAND_GLAMM_MODEL, COMMAND_VIDEOGLAMM_MODEL), (command, default)
        assert f"default: {default}" in action.help and "the paper's" in action.help, action.help
        paper = {COMMAND_CLIP_MODEL: DEFAULT_HF_MODEL, COMMAND_GLAMM_MODEL: "GLaMM-RefSeg",
                 COMMAND_VIDEOGLAMM_MODEL: "VideoGLaMM"}[default]
        assert paper in action.help, action.help
