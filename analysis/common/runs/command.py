"""The shell every study's ``command`` module is: :func:`study_run` makes its ``run(args) -> int``, which
turns the command line's namespace into the study's options dataclass, runs the study's light checks in order,
and only then imports the study's heavy function and calls it (so ``--help`` and every refusal of the checks
import no torch).

    run = study_run(SinkArgs, Lazy("analysis.sink.compute", "run_sink"), check_args)

The heavy function is a :class:`litelvlm.lazy.Lazy` (the module unimported until the command runs), which
``tests/project/test_typed_wiring.py`` resolves for every study, so a typo fails the suite instead of a run.

The checks shared by several studies are here: :func:`check_image_resize_option` (``--image-resize`` against
the model's family) and :func:`check_same_out` (another run's ``--out`` refused before anything loads); and
what a run prints, :class:`Screen`, which the command makes from ``-v`` and ``--quiet`` and hands to the
study. This module imports nothing heavy.
"""

from __future__ import annotations

import argparse
import inspect
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from analysis.common.runs.study import as_args, check_early
from litelvlm.lazy import Lazy
from litelvlm.registry.families import check_image_resize
from litelvlm.registry.resolved_model import record

#: a check of the options: raises to refuse them; may return corrected options (an instance of the dataclass)
Check = Callable[[Any], Any]


@dataclass(frozen=True)
class Screen:
    """What a run prints besides its progress: with ``verbose`` (``litelvlm -v COMMAND`` or ``COMMAND -v``)
    its full tables and every file it names, with ``quiet`` (``--quiet``) no headline; and the command line
    it was started from, ``argv`` (the words after ``litelvlm``), which config.json records as the run's
    ``command`` (:func:`analysis.common.runs.run_record.run_record`). Made by the command from its command
    line (:meth:`of`) and passed to the study; a run from code gets the default (neither, no command line)."""

    verbose: bool = False
    quiet: bool = False
    argv: tuple[str, ...] | None = None

    @classmethod
    def of(cls, args: Any) -> Screen:
        """The screen a command line's parsed namespace asks for (its ``verbose`` and ``quiet``, and the
        command line ``litelvlm.cli.main`` parsed, its ``_argv``); an options dataclass (a run from code) has
        none of them."""
        argv = getattr(args, "_argv", None)
        return cls(verbose=getattr(args, "verbose", False) is True,
                   quiet=getattr(args, "quiet", False) is True,
                   argv=tuple(argv) if isinstance(argv, (list, tuple)) else None)

    def headline(self, command_name: str, lines: Iterable[str], banner: str | None = None) -> None:
        """Print the run's answer: each of ``lines`` as ``COMMAND: line`` (unless :attr:`quiet`), then
        ``banner`` (the random-weights line, printed even when quiet: a number from random weights is always
        said to be one)."""
        if not self.quiet:
            for line in lines:
                print(f"{command_name}: {line}")
        if banner:
            print(banner)

    def show_table(self, text: str, where: str | os.PathLike, what: str = "table") -> None:
        """Print ``text``, a full table, when :attr:`verbose`; otherwise one line saying which file holds
        it."""
        if self.verbose:
            print(text)
        else:
            print(f"{what}: {where} (--verbose prints it)")

    def file_names(self, paths) -> str:
        """The names of ``paths`` when :attr:`verbose`; otherwise their count and folder (a family's figures
        are dozens)."""
        paths = [os.fspath(p) for p in paths]
        if self.verbose or len(paths) <= 2:
            return ", ".join(paths)
        folders = sorted({os.path.dirname(p) for p in paths})
        where = f" in {folders[0]}" if len(folders) == 1 and folders[0] else ""
        return f"{len(paths)} files{where} (--verbose lists them)"


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
    (:func:`~analysis.common.runs.study.check_early`)."""
    check_early(a.out, record(a))


#: a study's heavy function (``Lazy("analysis.<study>.compute", "<function>")``), or what picks it from the
#: checked options (one of several ``Lazy`` of the command module)
Heavy = Lazy | Callable[[Any], Lazy]


def study_run(options: type, heavy: Heavy, *checks: Check,
              hands_down: Check | None = None) -> Callable[..., int]:
    """The study's ``run(args, **extra) -> int``: ``args`` (the dataclass ``options``, or the command line's
    namespace) as ``options``; each of ``checks`` in order (one that returns an ``options`` instance replaces
    the options); then the heavy function ``heavy`` (a :class:`~litelvlm.lazy.Lazy`, or the one
    ``heavy(options)`` returns) imported and called with the options and ``extra``, and with ``checked=`` the
    result of the check ``hands_down`` (one of ``checks``), so that the heavy function checks nothing again. A
    heavy function that prints a table or a headline takes ``screen=``, what to print (:class:`Screen`): the
    one given to ``run`` (a study run by another command gets that command's), else the namespace's ``-v``
    and ``--quiet``. The returned function's ``study`` is ``options``, its ``heavy`` is ``heavy``."""
    if not (isinstance(heavy, Lazy) or callable(heavy)):
        raise TypeError(f"study_run needs the heavy function as a Lazy(module, attribute) or a function of "
                        f"the options returning one; got {heavy!r}")

    def run(args: Any, **extra: Any) -> int:
        screen = extra.pop("screen", None)
        a = as_args(options, args)
        for check in checks:
            checked = check(a)
            if isinstance(checked, options):
                a = checked
            elif check is hands_down:
                extra["checked"] = checked
        ref = heavy if isinstance(heavy, Lazy) else heavy(a)
        if not isinstance(ref, Lazy):
            raise TypeError(f"{heavy!r} returned {ref!r}, not a Lazy(module, attribute)")
        function = ref.get()   # lazy: torch, after the checks
        if "screen" in inspect.signature(function).parameters:
            extra["screen"] = screen if screen is not None else Screen.of(args)
        return function(a, **extra)

    run.study = options   # type: ignore[attr-defined]
    run.heavy = heavy   # type: ignore[attr-defined]
    run.__doc__ = (f"Run the study from its options: ``run({options.__name__}(...))``, or the command line's "
                   "parsed namespace; the options are checked before anything heavy is imported.")
    return run


__all__ = ["Check", "Heavy", "Screen", "check_image_resize_option", "check_same_out", "study_run",
           "with_quiet"]
