"""The ``litelvlm`` command: one argparse entry point with a subcommand per job.

Each subcommand lives in its own module, which defines ``add_arguments(parser)`` and
``run(args) -> int``. A module is imported only when its subcommand is named, so the
top-level ``--help`` is instant and one subcommand's heavy imports never slow another.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import functools
import logging
import os
import signal
import sys
from importlib.metadata import entry_points
from typing import NoReturn

from . import __version__
from .cli_args import split_list
from .commands import Command
from .errors import LiteLVLMError
from .machine import allocator
from .machine.collector import rarer_collection
from .methods import describe
from .models.model_spec import ModelSpec
from .runs.recovery import settle
from .runs.run_folder import committed_runs
from .runs.run_owner import claim
from .runs.stop_signals import STOPS, Stopped, stops_as_interrupts
from .switches import QUANTIZE_BACKENDS
from .threads import default_threads, torch_threads

#: The library's own subcommands: name -> its :class:`~litelvlm.commands.Command` (module, one-line help).
COMMANDS: dict[str, Command] = {
    "select": Command("litelvlm.commands.select",
                      "show which visual tokens a pruning method keeps for an image"),
    "explore": Command("litelvlm.explore.command", "write an interactive page of the tokens each method "
                       "keeps for an image, at every budget (this project's own explorer)"),
    "toy-data": Command("litelvlm.toy.cli", "write a synthetic referring-segmentation set in REFER layout"),
    "toy-train": Command("litelvlm.toy.command", "train the bundled toy CLIP on synthetic scenes (CPU)"),
}

#: Packages add subcommands through this entry-point group: each entry is a dict like
#: :data:`COMMANDS` (the studies declare theirs in ``pyproject.toml``).
ENTRY_POINT_GROUP = "litelvlm.commands"


@functools.lru_cache(maxsize=1)
def all_commands() -> dict[str, Command]:
    """The library's subcommands and those that installed packages register (studies first)."""
    found: dict[str, Command] = {}
    for ep in sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
        table = ep.load()
        if not all(isinstance(c, Command) for c in table.values()):
            raise TypeError(f"entry point {ep.value}: a table of litelvlm.commands.Command is expected")
        found.update(table)
    return {**found, **COMMANDS}


class OneLineParser(argparse.ArgumentParser):
    """An argument parser whose errors are one line, ``litelvlm CMD: error: ...; see --help`` (exit 2),
    without argparse's usage dump; its subparsers are of the same class."""

    def error(self, message: str) -> NoReturn:
        """Print the error on one line naming ``--help`` and exit with status 2."""
        self.exit(2, f"{self.prog}: error: {one_line(message)}; see --help\n")


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The parser with every subcommand listed; only the ``only`` subcommand's module is imported
    (its options added)."""
    parser = OneLineParser(prog="litelvlm", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"litelvlm {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, command in all_commands().items():
        p = sub.add_parser(name, help=command.help, description=command.help)
        if name != only:
            continue
        mod = command.load()
        mod.add_arguments(p)
        with contextlib.suppress(argparse.ArgumentError):  # -v also after the subcommand
            p.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS,
                           help="log debug messages (also accepted before the subcommand)")
        with contextlib.suppress(argparse.ArgumentError):  # unless the subcommand has its own --threads
            p.add_argument("--threads", type=int, default=None,
                           help="torch CPU threads (default: 1 for tiny/toy models, else the physical cores)")
        if any(a.dest == "out" for a in p._actions):  # a run folder: its run owns it (runs.run_owner)
            with contextlib.suppress(argparse.ArgumentError):  # unless the subcommand has its own --overwrite
                p.add_argument("--overwrite", action="store_true", default=False,
                               help="replace whatever run --out holds (another command's, another "
                                    "configuration's or damaged results) whole when this run finishes; a "
                                    "failed run keeps it")
        p.set_defaults(_run=mod.run, _parser=p)
    return parser


def quiet_third_party(verbose: bool = False) -> None:
    """Silence library progress bars and info logs that would drown the command's own output
    (through the environment while transformers is not imported: importing it costs seconds)."""
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    defer_quantization_backends()
    if verbose:
        return
    # torchao (the --quantize extra), which transformers imports whenever it is installed, registers enums
    # that torch's pytree warns about once each: noise unrelated to the command
    logging.getLogger("torch.utils._pytree").setLevel(logging.ERROR)
    if "transformers" not in sys.modules:
        os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")  # read when transformers is imported
        return
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()


def defer_quantization_backends() -> None:
    """Hide the quantization back-ends from transformers, which imports torchao (seconds, and torch warnings)
    whenever it is installed; :mod:`litelvlm.models.quantize` imports the one ``--quantize`` asks for. A
    ``None`` in ``sys.modules`` is Python's own "not importable" mark; only a process that has not imported
    them yet."""
    if "transformers" in sys.modules:
        return
    for name in QUANTIZE_BACKENDS:   # the ``quantize`` extra: imported only when ``--quantize`` asks
        sys.modules.setdefault(name, None)


#: how many ``main`` calls are running (a command such as ``demo`` runs others through ``main``)
_DEPTH = 0


class WarnOnce(logging.Filter):
    """Lets each warning text through once per command (a study run twice by another command, or one check met
    on every image, warns once)."""

    def __init__(self) -> None:
        super().__init__()
        self.first: dict[tuple[int, str], logging.LogRecord] = {}  # every handler shows the first record

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING:
            return True
        return self.first.setdefault((record.levelno, record.getMessage()), record) is record

#: Options naming folders a subcommand writes into, and options naming one file it writes.
OUTPUT_FOLDERS = ("out", "work_dir", "cache_dir")
OUTPUT_FILES = ("save_overlay",)
#: Options naming a file or folder a subcommand reads: it must exist (checked before torch is imported).
INPUT_PATHS = ("refer_dir", "image_dir", "video_dir", "results", "coco_instances", "expressions", "data",
               "image")
#: Options naming another run's results folder that a subcommand reads (``figures --results`` settles each run
#: folder of its tree itself)
RUN_INPUTS = ("compare_to",)
#: Options naming registered pruning methods (checked against :mod:`litelvlm.methods`, which imports no
#: torch).
METHOD_OPTIONS = ("methods", "method", "method_signals")
#: Options naming a model: a preset, a hub name or a folder (a folder must exist).
MODEL_OPTIONS = ("model", "clip", "sam", "tokenizer")


def _flag(dest: str) -> str:
    return "--" + dest.replace("_", "-")


def _check_writable(dest: str, path: str, folder: bool) -> None:
    """Raise unless ``path`` can be written: a folder (or a file, ``folder=False``) that exists and is
    writable, or a new one under a writable existing folder."""
    if os.path.islink(path) and not os.path.exists(path):
        raise LiteLVLMError(f"{_flag(dest)} {path!r} is a broken symbolic link (to {os.readlink(path)!r}): "
                            f"remove it, or give another {_flag(dest)}")
    if folder and os.path.exists(path) and not os.path.isdir(path):
        raise LiteLVLMError(f"{_flag(dest)} {path!r} exists and is not a folder")
    if not folder and os.path.isdir(path):
        raise LiteLVLMError(f"{_flag(dest)} {path!r} is a folder; give a file name")
    probe = os.path.abspath(os.path.expanduser(path))
    if not folder or not os.path.isdir(probe):  # a new folder or any file: its nearest existing folder
        probe = os.path.dirname(probe)
        while not os.path.exists(probe):
            probe = os.path.dirname(probe)
    if not os.path.isdir(probe):
        raise LiteLVLMError(f"{_flag(dest)} {path!r}: {probe!r} is a file, not a folder")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise LiteLVLMError(f"{_flag(dest)} {path!r}: folder {probe!r} is not writable")


def one_line(message: str) -> str:
    """``message`` on one line (a library's multi-line error text joined with spaces)."""
    return " ".join(part.strip() for part in message.splitlines() if part.strip())


def _run_folders(args: argparse.Namespace) -> None:
    """A run owns its ``--out`` (:func:`litelvlm.runs.run_owner.claim`); another run's folder that the command
    reads (:data:`RUN_INPUTS`) first has what a killed run left there settled
    (:func:`litelvlm.runs.recovery.settle`)."""
    with stops_as_interrupts():   # a stop while an unfinished run's folder is being settled
        out = getattr(args, "out", None)
        if isinstance(out, str) and out and isinstance(getattr(args, "command", None), str):
            claim(out, args.command, getattr(args, "overwrite", False) is True, known=all_commands())
        for dest in RUN_INPUTS:
            path = getattr(args, dest, None)
            if isinstance(path, str) and path and os.path.isdir(path):
                settle(path)


def check_common_options(args: argparse.Namespace) -> None:
    """The checks every subcommand shares, before any work and before torch is imported: output folders
    (``--out``, ...) and files (``--save-overlay``) must be writable where they are, an ``--out`` folder must
    hold no other command's run and no damaged results (:func:`litelvlm.runs.run_owner.claim`), input paths
    must exist, method names must be registered, and ``--device cuda`` needs a GPU."""
    listing = getattr(args, "list", False) is True or getattr(args, "list_methods", False) is True
    for dest in () if listing else OUTPUT_FOLDERS + OUTPUT_FILES:  # a listing writes nothing
        path = getattr(args, dest, None)
        if isinstance(path, str) and path:
            _check_writable(dest, path, folder=dest in OUTPUT_FOLDERS)
    if not listing:
        _run_folders(args)
    for dest in () if listing else INPUT_PATHS:
        path = getattr(args, dest, None)
        if isinstance(path, str) and path and not os.path.exists(os.path.expanduser(path)):
            raise LiteLVLMError(f"{_flag(dest)} {path!r} does not exist")
    for dest in MODEL_OPTIONS:   # a model given as a path (not a preset or hub name) must exist
        spec = getattr(args, dest, None)
        if isinstance(spec, str) and spec:
            folder = ModelSpec.of(spec).folder
            if folder.startswith(("/", "./", "../", "~")) and not os.path.exists(os.path.expanduser(folder)):
                raise LiteLVLMError(f"{_flag(dest)} {spec!r}: model folder {folder!r} does not exist")
    for dest in METHOD_OPTIONS:
        value = getattr(args, dest, None)
        if isinstance(value, (str, list)) and value:
            for name in split_list(value):
                describe(name)   # an unknown name: an error naming the closest registered ones
    device = getattr(args, "device", None)
    if isinstance(device, str) and device.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            raise LiteLVLMError(f"--device {device}: no CUDA device is available on this machine")


def main(argv: list[str] | None = None) -> int:
    """Entry point: parse, dispatch, and turn user errors into a message and exit status 2; each warning is
    printed once (:class:`WarnOnce`), also across the commands this one runs."""
    global _DEPTH
    once = WarnOnce() if _DEPTH == 0 else None
    _DEPTH += 1
    try:
        return _main(argv, once)
    finally:
        _DEPTH -= 1
        for h in logging.getLogger().handlers if once else ():
            h.removeFilter(once)


def _stop_outcome(stop: KeyboardInterrupt, commits: int, overwrite: bool) -> str:
    """What a stopped command leaves, as its stop line says it after ``stopped by SIGTERM``: the outcome its
    results folder attached (:class:`litelvlm.runs.run_folder.RunFolder`: resume, the earlier run kept,
    nothing kept), else whether a run committed after the first ``commits`` of this process, else what holds
    before any write (under ``overwrite``: the earlier run, untouched)."""
    outcome = getattr(stop, "outcome", None)
    if outcome:
        return f"; {outcome}"
    done = committed_runs()[commits:]
    if done:
        return f" after the run completed; its results are committed in {done[-1]}"
    if overwrite:
        return "; the results folder holds its earlier run, byte for byte: this run replaced nothing"
    return " before the run wrote anything; nothing of it is kept"


def after_completion(command: str, out: str | os.PathLike | None = None) -> None:
    """From now until the process ends (its command has returned), SIGTERM and SIGHUP say that the run of
    ``command`` completed (its results in ``out``) and end the process with 128 + the signal, instead of
    ending it silently; signals with a handler of their own are left alone."""
    where = f"; its results are committed in {out}" if out is not None else ""

    def said(signum: int, frame: object) -> None:
        print(f"litelvlm {command}: stopped by {signal.Signals(signum).name} after the run completed{where}",
              file=sys.stderr, flush=True)
        os._exit(128 + signum)

    for sig in STOPS:
        if signal.getsignal(sig) == signal.SIG_DFL:
            signal.signal(sig, said)


def _main(argv: list[str] | None, once: WarnOnce | None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    only = next((a for a in argv if a in all_commands()), None)
    parser = build_parser(only=only)
    try:  # usage errors (exit 2) and --help/--version (exit 0) come back as a return code
        args, unknown = parser.parse_known_args(argv)
        if unknown:  # reported under the subcommand's own usage line
            (getattr(args, "_parser", None) or parser).error(f"unrecognized arguments: {' '.join(unknown)}")
    except SystemExit as e:
        return int(e.code or 0)
    # the command line travels with the namespace: a study's Screen carries it to the provenance record of
    # its config.json (analysis.common.runs.run_record)
    args._argv = tuple(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    for h in logging.getLogger().handlers if once else ():
        h.addFilter(once)
    for name in {"litelvlm"} | {command.package for command in all_commands().values()}:
        logging.getLogger(name).setLevel(logging.DEBUG if args.verbose else logging.INFO)
    quiet_third_party(args.verbose)
    if not getattr(args, "command", None):
        parser.print_help()
        return 2
    commits, overwrite = len(committed_runs()), getattr(args, "overwrite", False) is True
    try:
        # None: the bundled toy CLIP
        hint = args.model if hasattr(args, "model") else getattr(args, "arch", "")
        check_common_options(args)
        allocator.apply_choice()   # glibc keeps freed blocks for the next tensor (LITELVLM_MALLOC)
        n = args.threads if getattr(args, "threads", None) is not None else default_threads(hint)
        with torch_threads(n), rarer_collection(), stops_as_interrupts():   # SIGTERM, SIGHUP: as Ctrl-C
            code = int(args._run(args) or 0)
        if argv is None and code == 0:   # this process ends with the command: a late stop says it completed
            done = committed_runs()[commits:]
            after_completion(args.command, done[-1] if done else None)
        return code
    except LiteLVLMError as e:
        print(f"litelvlm {args.command}: error: {one_line(str(e))}", file=sys.stderr)
        return 2
    except Stopped as e:
        print(f"litelvlm {args.command}: stopped by {e.name}{_stop_outcome(e, commits, overwrite)}",
              file=sys.stderr)
        return 128 + e.signum
    except KeyboardInterrupt as e:
        print(f"litelvlm {args.command}: interrupted{_stop_outcome(e, commits, overwrite)}", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader went away (`litelvlm select --list-methods | head`): not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit
        return 0
    # a full disk, a read-only or missing folder met while writing: one line naming the file
    except OSError as e:
        if e.filename is None and e.errno not in (errno.ENOSPC, errno.EDQUOT, errno.EROFS):
            raise
        where = f" {e.filename}" if e.filename else ""
        print(f"litelvlm {args.command}: error: cannot write or read{where}: {e.strerror or e} (results are "
              "written atomically: nothing partial is left, and a re-run resumes)", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
