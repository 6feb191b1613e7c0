"""The shell every study's ``command`` module is: :func:`study_run` makes its ``run(args) -> int``, which
turns the command line's namespace into the study's options dataclass, runs the study's light checks in order,
and only then imports the study's heavy function and calls it (so ``--help`` and every refusal of the checks
import no torch).

    run = study_run(SinkArgs, "analysis.sink.compute:run_sink", check_args)

The checks shared by several studies are here: :func:`check_image_resize_option` (``--image-resize`` against
the model's family) and :func:`check_same_out` (another run's ``--out`` refused before anything loads). This
module imports nothing heavy.
"""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Callable
from dataclasses import asdict
from typing import Any

from analysis.common.study import as_args, check_early
from litelvlm.families import check_image_resize

#: a check of the options: raises to refuse them; may return corrected options (an instance of the dataclass)
Check = Callable[[Any], Any]
#: whether the running study was given ``--quiet``: its headline (the few lines of its answer,
#: :func:`analysis.common.screen.headline`) is not printed; set by :func:`study_run` for the run's length
QUIET = False


def with_quiet(add_arguments: Callable[[argparse.ArgumentParser], None]
               ) -> Callable[[argparse.ArgumentParser], None]:
    """``add_arguments`` of a study, plus ``--quiet`` (no headline; a screen option, not the run's: it is no
    field of the options, so config.json and the results stay the same)."""

    def add(parser: argparse.ArgumentParser) -> None:
        add_arguments(parser)
        parser.add_argument("--quiet", action="store_true", default=False,
                            help="do not print the headline (the few lines stating the run's answer at its "
                                 "end); the random-weights banner stays")

    add.__doc__ = add_arguments.__doc__
    return add


def check_image_resize_option(a: Any) -> None:
    """``--image-resize`` refused for a model whose family cannot resize (before anything loads)."""
    check_image_resize(a.image_resize, a.model)


def check_same_out(a: Any) -> None:
    """An ``--out`` holding another configuration's results refused before anything loads
    (:func:`~analysis.common.study.check_early`)."""
    check_early(a.out, asdict(a))


def study_run(options: type, heavy: str | Callable[[Any], str], *checks: Check,
              hands_down: Check | None = None) -> Callable[..., int]:
    """The study's ``run(args, **extra) -> int``: ``args`` (the dataclass ``options``, or the command line's
    namespace) as ``options``; each of ``checks`` in order (one that returns an ``options`` instance replaces
    the options); then the heavy function ``"module:function"`` (or the one ``heavy(options)`` names) imported
    and called with the options and ``extra``, and with ``checked=`` the result of the check ``hands_down``
    (one of ``checks``), so that the heavy function checks nothing again; ``quiet=True`` (or the namespace's
    ``--quiet``) silences the headline. The returned function's ``study`` is ``options``."""

    def run(args: Any, **extra: Any) -> int:
        global QUIET
        quiet = bool(extra.pop("quiet", getattr(args, "quiet", False)))
        a = as_args(options, args)
        for check in checks:
            checked = check(a)
            if isinstance(checked, options):
                a = checked
            elif check is hands_down:
                extra["checked"] = checked
        module, name = (heavy(a) if callable(heavy) else heavy).split(":")
        before, QUIET = QUIET, quiet or QUIET   # a study run by a quiet one is quiet
        try:
            # lazy: torch, after the checks
            return getattr(importlib.import_module(module), name)(a, **extra)
        finally:
            QUIET = before

    run.study = options   # type: ignore[attr-defined]
    run.__doc__ = (f"Run the study from its options: ``run({options.__name__}(...))``, or the command line's "
                   "parsed namespace; the options are checked before anything heavy is imported.")
    return run


__all__ = ["QUIET", "Check", "check_image_resize_option", "check_same_out", "study_run", "with_quiet"]
