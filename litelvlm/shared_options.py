"""The options several commands share, each declared once here: its flag, what the parser reads it into and
what it refuses (``minimum=``, choices, an empty list: :func:`litelvlm.cli_args.refusal`). What stays a
command's own is its default, a named constant (``analysis.common.options.defaults``), and its help words,
which say what the option means there:

    budgets: list[Budget] = budgets_option(GROUNDING_BUDGETS, help="visual-token budgets K (K >= 1; ...)")
    seed: int = seed_option("seed for templates, sampling, random selectors ...")

Each declaration names its group (``shared=``), so that a test finds every command's ``--budgets``, ``--seed``
... declared here and nowhere else. This module imports nothing heavy (the command line reads it before torch
loads).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from typing import Any

from .budget import Budget
from .cli_args import arg
from .refer_layout import SPLIT_SCHEMES
from .switches import CLIP_BACKENDS, QUANTIZE_BACKENDS, QUANTIZE_MODES

#: the fields the groups below declare (every command's option of that name comes from its group here)
SHARED_OPTIONS: tuple[str, ...] = ("budgets", "seed", "model", "out", "device", "dtype", "limit_images",
                                   "methods", "n_boot", "boot_seed", "backend", "quantize",
                                   "quantize_backend", "split_by")
#: ``--dtype`` names (torch's dtypes of the same names: ``getattr(torch, name)``)
DTYPES: tuple[str, ...] = ("float32", "bfloat16", "float16")


def budgets_option(default: Iterable[int] | None, help: str, *, flag: str | None = None,
                   nonempty: bool = True) -> Any:
    """A list of visual-token budgets K (``--budgets 576,192 64``): read into
    :class:`~litelvlm.budget.Budget` objects by the parser, once (K >= 1; ``all`` refused: the baseline runs
    at every token anyway), never empty unless ``nonempty`` is False (an empty value then means none);
    ``default``: the command's budgets (ints, a named constant), or None for a rule of its own."""
    return arg(None if default is None else Budget.parse_list(tuple(default)), help=help, flag=flag,
               nonempty=nonempty, shared="budgets")


def seed_option(help: str, default: int = 0) -> Any:
    """``--seed``: a whole number >= 0 (NumPy's generators refuse a negative one)."""
    return arg(default, help=help, minimum=0, shared="seed")


def n_boot_option(help: str, default: int = 1000) -> Any:
    """``--n-boot``: bootstrap replicates of a study's intervals (fewer than one: no interval, NaN)."""
    return arg(default, help=help, shared="n_boot")


def boot_seed_option() -> Any:
    """``--boot-seed``: the statistics' own seed, >= 0 (the studies with resumable statistics)."""
    return arg(None, minimum=0, help="seed of the bootstrap and of the paired test's patterns (default: "
               "--seed); a new one into an existing --out recomputes only the statistics, from the stored "
               "rows", shared="boot_seed")


def model_option(default: str | None, help: str) -> Any:
    """``--model``: a model string, read once by the parser into a
    :class:`~litelvlm.models.model_spec.ModelSpec` (the field's type); what it names is looked up where the
    model is resolved."""
    return arg(default, help=help, shared="model")


def out_option(help: str, default: Any = dataclasses.MISSING) -> Any:
    """``--out``: the folder (or file) a command writes; required unless the command has a ``default``."""
    if default is dataclasses.MISSING:
        return arg(help=help, required=True, shared="out")
    return arg(default, help=help, shared="out")


def device_option(help: str = "torch device", default: str = "cpu", choices: list[str] | None = None) -> Any:
    """``--device``: a torch device (``cpu``, ``cuda``, ``cuda:1``), or one of ``choices``."""
    return arg(default, help=help, choices=choices, shared="device")


def dtype_option(default: str | None, help: str, choices: Iterable[str] = DTYPES) -> Any:
    """``--dtype``: one of ``choices`` (:data:`DTYPES`, with ``auto`` where the command has a rule for it)."""
    return arg(default, help=help, choices=list(choices), shared="dtype")


def limit_images_option(help: str, default: int | None = None, *,
                        deprecated: tuple[str, ...] = ("--limit",)) -> Any:
    """``--limit-images N``: only the first N >= 1 images (the old ``--limit`` a hidden alias)."""
    return arg(default, help=help, minimum=1, deprecated=deprecated, shared="limit_images")


def methods_option(default: list[str] | None, help: str) -> Any:
    """``--methods``: registered method names, comma or space separated (checked against the registry
    before anything loads, ``litelvlm.cli.check_common_options``)."""
    return arg(default, help=help, shared="methods")


def clip_backend_option() -> Any:
    """``--backend``: the CLIP back-end, ``hf`` or ``open_clip`` (default: inferred from ``--model``)."""
    return arg(None, help="hf or open_clip (default: inferred from --model)", choices=list(CLIP_BACKENDS),
               shared="backend")


def quantize_option(help: str) -> Any:
    """``--quantize``: ``none``, ``int8`` or ``nf4`` (``help`` says what the command quantizes)."""
    return arg("none", help=help, choices=list(QUANTIZE_MODES), shared="quantize")


def quantize_backend_option(help: str) -> Any:
    """``--quantize-backend``: the library of ``--quantize``, ``bitsandbytes`` (default) or ``torchao``."""
    return arg("bitsandbytes", help=help, choices=list(QUANTIZE_BACKENDS), shared="quantize_backend")


def split_by_option() -> Any:
    """``--split-by``: a REFER split scheme (``unc``, the default; ``google``, ``umd``)."""
    return arg("unc", help="REFER split scheme", choices=list(SPLIT_SCHEMES), shared="split_by")


__all__ = ["DTYPES", "SHARED_OPTIONS", "boot_seed_option", "budgets_option", "clip_backend_option",
           "device_option", "dtype_option", "limit_images_option", "methods_option", "model_option",
           "n_boot_option", "out_option", "quantize_backend_option", "quantize_option", "seed_option",
           "split_by_option"]
