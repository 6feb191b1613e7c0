"""What one ``litelvlm efficiency`` run measures, checked before anything is built: its architecture (a
``--model``'s or the paper's), methods, budgets, (method, budget) runs, attention kernels and dtype
(:func:`checked_scope`; ``auto``: :func:`resolve_dtype`)."""

from __future__ import annotations

import logging
import sys
from dataclasses import replace

import torch

from analysis.common.grounding.grounding_runs import Run, image_runs, plan
from analysis.efficiency.arch import arch_names, arch_of_model, cost_of, get_arch
from analysis.efficiency.options import DEFAULT_BUDGETS, EfficiencyArgs, check_args
from litelvlm.budget import Budget
from litelvlm.cli_args import split_list
from litelvlm.cost import costs, family_cost
from litelvlm.errors import LiteLVLMError
from litelvlm.lvlm.fastest_dtype import fastest_dtype
from litelvlm.methods import BASELINE, get_method, method_names
from litelvlm.models.quantize import check_quantize
from litelvlm.registry.families import card
from litelvlm.switches import ARRANGEMENTS

log = logging.getLogger(__name__)


def checked_scope(a: EfficiencyArgs) -> tuple:
    """(arch, methods, budgets, runs, attns, dtype name) of ``a``: the checks of
    :func:`analysis.efficiency.options.check_args`, then those that need the methods, the arch and torch."""
    check_args(a)
    check_quantize(a.quantize, a.quantize_backend)  # the library's rule (nf4 is bitsandbytes' only)

    a = resolve_arch(a)
    arch = get_arch(a.arch, a.text_tokens)
    cost = cost_of(arch)
    cost.check(arch, a)
    if not cost.arrangements and split_list(a.arrangements) != list(ARRANGEMENTS):
        offered = [name for c in costs() if c.arrangements for name in c.archs]
        raise LiteLVLMError(f"--arrangements applies to --arch {' / '.join(offered)} only")
    methods = _methods(arch, split_list(a.methods))
    budgets = sorted(set(family_budgets(cost, a.budgets)), key=lambda b: b.column, reverse=True)
    # the budgets' one range check (N fixed by the grid) or skip (N per image)
    runs = _runs(arch, methods, budgets)
    if errors := [e for m in methods for e in arch.spec(m).layer_errors(a, arch.llm.llm_layers)]:
        raise LiteLVLMError(f"--arch {a.arch}: " + "; ".join(dict.fromkeys(errors)))
    attns = split_list(a.attn)
    if a.device == "cuda" and not torch.cuda.is_available():
        raise LiteLVLMError("--device cuda: no CUDA device is visible (use --device cpu, or --flops-only)")
    if not a.flops_only and a.device == "cpu" and a.arch in cost.full_size:
        small = [name for c in costs() for name in c.archs if name not in c.full_size]
        raise LiteLVLMError(f"timing the full-size {a.arch} on a CPU is not supported; use --arch "
                            f"{' or '.join(small)} on a CPU, --device cuda, or --flops-only")
    dtype = a.dtype or ("auto" if (a.device == "cpu" and not a.flops_only) else "bfloat16")
    if a.device == "cpu" and not a.flops_only and dtype == "float16":
        raise LiteLVLMError("--dtype float16 is not supported for CPU timing; use float32 or bfloat16")
    return arch, methods, budgets, runs, attns, dtype


def family_budgets(cost, budgets: list[Budget]) -> list[Budget]:
    """``budgets``, or the family's own default budgets (per frame) where ``--budgets`` is left at the
    study's."""
    if cost.default_budgets and budgets == Budget.parse_list(DEFAULT_BUDGETS):
        return Budget.parse_list(cost.default_budgets)
    return budgets


def resolve_arch(a: EfficiencyArgs) -> EfficiencyArgs:
    """``a`` with its ``--arch`` resolved: a ``--model``'s arch (its preset's, in its family's cost
    description), the paper's architecture when neither is given; an unknown arch is an error listing every
    one."""
    if a.model is not None:  # a family's random model string: its preset's arch
        a = replace(a, arch=arch_of_model(a.model), model=None)
    elif a.arch is None:  # the paper's architecture
        a = replace(a, arch=next(c.paper_arch for c in costs() if c.paper_arch))
    if a.arch not in arch_names():
        get_arch(a.arch)  # the error listing every arch
    return a


def resolve_dtype(name: str, a: EfficiencyArgs, arch) -> tuple[str, dict | None]:
    """(the dtype, what ``auto`` measured or None): ``auto`` is bfloat16 when counting or on CUDA, else the
    faster of bfloat16 and float32 for the LLM's layer shape on this CPU's threads
    (``litelvlm.lvlm.fastest_dtype``)."""
    if name != "auto":
        return name, None
    if a.flops_only:
        return "bfloat16", {"dtype": "bfloat16", "reason": "--flops-only: counted, not timed (no benchmark)"}
    # the family's CPU timing dtype (its cost description says why)
    if cost_of(arch).cpu_dtype and a.device == "cpu":
        dtype = cost_of(arch).cpu_dtype
        return dtype, {"dtype": dtype, "reason": f"{arch.family}: timed in {dtype} on a CPU (no benchmark)"}

    choice = fastest_dtype(a.device, arch.n_tokens(arch.num_patches), arch.llm.llm_hidden,
                           arch.llm.llm_intermediate)
    log.info("--dtype auto: %s (%s)", choice.dtype, choice.reason)
    return choice.dtype, choice.to_dict()


def _methods(arch, named: list[str]) -> list[str]:
    """The methods to measure: ``named`` (each an error if it is an analysis oracle or the arch's family does
    not offer it), or by default every registered method but the oracles that the family offers."""
    cost = cost_of(arch)
    for m in named:
        if get_method(m).oracle:
            raise LiteLVLMError(f"--methods: {m!r} is an analysis oracle, not a pruning method with a cost "
                                "to measure")
    if named:
        if errors := cost.method_errors(named):
            raise LiteLVLMError(f"--arch {arch.name}: " + "; ".join(errors))
        return named
    candidates = [m for m in method_names() if not get_method(m).oracle]
    offered = cost.offered_methods(arch, candidates)
    if refused := [m for m in candidates if m not in offered]:
        print(f"efficiency: --arch {arch.name}: the {arch.family} family does not offer "
              f"{', '.join(refused)}; measuring the others", file=sys.stderr)
    return offered


def family_method_error(family: str, method: str) -> str | None:
    """Why ``method`` does not run on ``family`` (its cost description's answer, asked before any model is
    built; None: it runs)."""

    return next(iter(family_cost(card(family)).method_errors([method])), None)


def _runs(arch, methods: list[str], budgets: list[Budget]) -> list[Run]:
    """(method, budget) runs (``analysis.common.grounding.grounding_runs.plan``, the budgets' one range check
    where N is fixed by the grid): the baseline once at K = N, every other method at every budget; on a family
    whose N depends on the image, a budget above the study image's N is skipped with a warning
    (``image_runs``, as ``eval-grounding`` skips it per image)."""
    n, fixed = arch.num_patches, cost_of(arch).fixed_grid
    runs = image_runs(plan([BASELINE, *methods], budgets, n if fixed else None), n)
    if len(runs) == 1 and any(not get_method(m).baseline for m in methods):
        raise LiteLVLMError(f"--budgets: every budget exceeds the image's {n} visual tokens ({arch.name})")
    return runs


__all__ = ["checked_scope", "family_budgets", "family_method_error", "resolve_arch", "resolve_dtype"]
