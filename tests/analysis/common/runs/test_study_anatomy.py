"""Every study has the same anatomy (analysis.common.runs.study): options dataclass, subcommand, figure
set."""

from __future__ import annotations

import dataclasses
import importlib

import pytest

from analysis.common.runs.study import STUDIES, Study


@pytest.mark.parametrize("command", sorted(STUDIES))
def test_study_module_has_the_shared_anatomy(command):
    from analysis.commands import COMMANDS
    from analysis.figures.registry import FIGURE_SETS

    figure_set = STUDIES[command]
    module_name = COMMANDS[command][0]
    mod = importlib.import_module(module_name)
    assert isinstance(mod, Study), f"{module_name} lacks ARGS, add_arguments or run"
    assert dataclasses.is_dataclass(mod.ARGS)
    if figure_set is not None:
        assert figure_set in FIGURE_SETS and FIGURE_SETS[figure_set].name == figure_set


def test_every_study_subcommand_is_listed():
    from analysis.commands import COMMANDS

    assert set(COMMANDS) - {"figures"} == set(STUDIES)  # figures draws the studies' results
