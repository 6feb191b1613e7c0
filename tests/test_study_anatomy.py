"""Every study has the same anatomy (analysis.study): options dataclass, subcommand, figure family."""

from __future__ import annotations

import dataclasses
import importlib

import pytest

from analysis.study import STUDIES, Study


@pytest.mark.parametrize("command", sorted(STUDIES))
def test_study_module_has_the_shared_anatomy(command):
    from analysis.commands import COMMANDS
    from analysis.families import FAMILIES

    module_name, family = STUDIES[command]
    mod = importlib.import_module(module_name)
    assert isinstance(mod, Study), f"{module_name} lacks ARGS, add_arguments or run"
    assert dataclasses.is_dataclass(mod.ARGS)
    assert COMMANDS[command][0] == module_name  # the subcommand runs this module
    if family is not None:
        assert family in FAMILIES and FAMILIES[family].name == family
