"""The efficiency study's cost contract: what a family tells ``litelvlm efficiency`` to count and time.

Each counted family holds ``COST`` (a :class:`FamilyCost`) in its ``cost.py``; :func:`family_cost` loads it.

Details: docs/efficiency.md (``litelvlm.cost``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any, Protocol

from ..budget import Budget
from ..errors import LiteLVLMError
from ..methods import get_method
from ..registry.families import cards, get_family
from .tokens import schedule_plan


@dataclass(frozen=True)
class CostArch:
    """One architecture of a family and the prompt it is run with.

    ``family`` and ``preset`` name it; ``llm`` holds the decoder's sizes (``litelvlm.cost.tokens.LLMSizes``);
    ``num_patches`` is N, the visual tokens of the study's image; ``text_tokens`` the prompt tokens around
    them, ``prefix_tokens`` of them before the visual tokens; ``extra`` what the family adds to the run's
    config."""

    name: str
    family: str
    preset: str
    llm: Any
    num_patches: int
    text_tokens: int = 129
    prefix_tokens: int = 36
    description: str = ""
    extra: tuple[tuple[str, Any], ...] = ()

    @property
    def clip(self):
        """The CLIP tower's sizes (a ``litelvlm.clip.random_init.ClipArch``), where the family has one."""
        raise LiteLVLMError(f"--arch {self.name}: the {self.family} family has no CLIP tower")

    def spec(self, method: str):
        """The :class:`~litelvlm.method.Method` ``method`` runs as on this architecture's family (its variant
        for the family's backbone where one is registered)."""
        return get_method(method, get_family(self.family).abilities.backbone)

    def n_tokens(self, visual: int) -> int:
        """LLM sequence length with ``visual`` visual tokens."""
        return self.text_tokens + visual

    def to_dict(self) -> dict:
        """The run's record of this architecture (``config.json``'s ``arch``)."""
        return {"name": self.name, "family": self.family, "preset": self.preset, "llm": asdict(self.llm),
                "num_visual": self.num_patches, "text_tokens": self.text_tokens,
                "prefix_tokens": self.prefix_tokens, "description": self.description, **dict(self.extra)}


@dataclass(frozen=True)
class CountedRow:
    """One row of the FLOPs count: its attention, method, budget and token plan, the LLM prefill's FLOPs and
    the activation bytes on ``meta`` (peak, kept by the logits), and the family's own columns (``columns``, in
    the table's order: its parts' FLOPs and the end-to-end sum)."""

    attn: str
    method: str
    budget: int
    plan: Any
    flops: int
    peak: int
    kept: int
    columns: dict


class CostRunArgs(Protocol):
    """What a family's cost description reads of the run's options (``litelvlm efficiency``'s provide each,
    with the methods' own options, which :meth:`~litelvlm.method.Method.options_from` reads)."""

    quantize: str               # none, int8, nf4: the decoder layers' weights
    e2e: str                    # how the end-to-end time is measured (``chain``: the parts chained)
    arrangements: list[str]     # the arrangements a video row may take (VideoGLaMM)


class FamilyCost:
    """A family's cost description (the defaults: a single-image family whose N is fixed by its grid).

    Subclasses set the class attributes and implement :meth:`arch`, :meth:`count` and either :meth:`build`,
    :meth:`set_attention` and :meth:`parts` (timed by the study) or :meth:`timing_rows`
    (:attr:`sums_parts`)."""

    #: the family's registry name
    family: str = ""
    #: ``--arch`` name -> the family's preset
    archs: Mapping[str, str] = {}
    #: the full-size archs (counted anywhere, not timed on a CPU)
    full_size: tuple[str, ...] = ()
    #: the family's presets the study counts under no arch -> why (declared, so none is missing unnoticed)
    uncounted: Mapping[str, str] = {}
    #: the arch of the paper's efficiency table (its numbers appear only beside its rows); None: none
    paper_arch: str | None = None
    #: N is fixed by the visual grid (a budget outside 1..N is an error); False: it depends on the image
    fixed_grid: bool = True
    #: the budgets a run takes when ``--budgets`` is left at its default (None: the study's default)
    default_budgets: tuple[int, ...] | None = None
    #: the columns that key a row (the FLOPs and timing tables are joined on them)
    row_keys: tuple[str, ...] = ("attn", "method", "budget")
    #: the dtype of CPU timing instead of ``auto`` (None: ``auto`` measures the faster)
    cpu_dtype: str | None = None
    #: the end-to-end time is the sum of the parts' medians (no chained run, no quantization)
    sums_parts: bool = False
    #: the arrangements a row may take (a video prompt's per-frame pooling); () none
    arrangements: tuple[str, ...] = ()
    #: whether its pipeline's decoder layers can be timed quantized (``--quantize``)
    offers_quantize: bool = True

    # -- architectures ---------------------------------------------------------------------------------------
    def arch(self, name: str, text_tokens: int | None = None) -> CostArch:
        """The architecture ``name`` of :attr:`archs` (optionally with another prompt length)."""
        raise NotImplementedError

    def arch_of_preset(self, preset: str) -> str | None:
        """The ``--arch`` name of the family's preset ``preset`` (None: the study counts none of it)."""
        return next((name for name, p in self.archs.items() if p == preset), None)

    # -- rows ------------------------------------------------------------------------------------------------
    def method_errors(self, named: list[str]) -> list[str]:
        """Why each of ``named`` does not run on the family (its pipeline's ``method_error``, which reads only
        the family's declarations: asked before any model is built)."""
        cls = get_family(self.family)
        return [why for m in named if (why := cls.method_error(cls.__new__(cls), m))]

    def offered_methods(self, arch: CostArch, candidates: list[str]) -> list[str]:
        """Of ``candidates`` (the registered methods but the oracles), those the family offers by default."""
        return [m for m in candidates if not self.method_errors([m])]

    def rows(self, arch: CostArch, runs: list[tuple[str, Budget]], method_args: CostRunArgs) -> list[tuple]:
        """The rows of a run (keys after ``attn`` in :attr:`row_keys`) from its (method, budget) runs, each
        budget counted once (:meth:`Budget.count` against ``arch``'s N) into its K: (method, K)."""
        return counted(arch, runs)

    def plan(self, arch: CostArch, row: tuple, method_args: CostRunArgs | None):
        """The token plan of ``row`` (``litelvlm.cost.tokens.TokenPlan``), as the method declares it."""
        method, budget = row[:2]
        spec = arch.spec(method)
        return schedule_plan(method, budget, arch.num_patches, arch.llm.llm_layers, arch.text_tokens,
                             spec.options_from(method_args), spec=spec)

    def check(self, arch: CostArch, method_args: CostRunArgs) -> None:
        """Refuse what the family does not offer in a run of ``method_args`` (a :class:`LiteLVLMError`)."""
        quantize = method_args.quantize
        if not self.offers_quantize and quantize != "none":
            raise LiteLVLMError(f"the {arch.family} family does not offer --quantize yet")

    # -- counting and timing ---------------------------------------------------------------------------------
    def count(self, arch: CostArch, rows: list[tuple], attns: list[str], dtype,
              method_args: Any) -> list[CountedRow]:
        """The FLOPs and ``meta`` activation of every part, per attention and row, counted on ``meta``."""
        raise NotImplementedError

    def build(self, arch: CostArch, device, dtype, attn: str = "sdpa",
              quantize: tuple[str, str] = ("none", "")):
        """The family's pipeline of ``arch`` with random weights on ``device`` (what ``eval-grounding``
        runs)."""
        raise NotImplementedError

    def set_attention(self, pipe, attn: str) -> None:
        """Attention implementation ``attn`` in the pipeline's LLM and towers (same weights)."""
        raise NotImplementedError

    def parts(self, pipe, arch: CostArch, method_args: Any):
        """One grounding call of ``pipe`` as measurable parts (a
        :class:`litelvlm.cost.parts.PrefillParts`)."""
        raise NotImplementedError

    def timing_rows(self, arch: CostArch, rows: list[tuple], attns: list[str], device, dtype, warmup: int,
                    repeats: int, device_label: str = "", capture: str | None = None):
        """A :attr:`sums_parts` family's timing rows (a DataFrame keyed by :attr:`row_keys`; ``device_label``:
        the device in words; ``capture``: ``--prefill captured``'s ``--capture``, None for the eager
        prefill)."""
        raise NotImplementedError

    def figure_rows(self, df):
        """The table as the study's figures draw it (one line per method; a family may relabel rows)."""
        return df


def counted(arch: CostArch, runs: list[tuple[str, Budget]]) -> list[tuple[str, int]]:
    """(method, K) of each (method, budget) run: the budget counted once against ``arch``'s N (``all``: N)."""
    return [(method, budget.count(arch.num_patches)) for method, budget in runs]


def family_cost(card) -> FamilyCost | None:
    """The cost description a family card points at (its ``cost`` field, a
    :class:`~litelvlm.models.family_card.Lazy`); None: none."""
    target = getattr(card, "cost", None)
    if not target:
        return None
    cost = target.get()
    if not isinstance(cost, FamilyCost):
        raise TypeError(f"{target} is not a litelvlm.cost.FamilyCost")
    return cost


def costs() -> list[FamilyCost]:
    """Every registered family's cost description, in the registry's order (families without one left out)."""
    return [c for card in cards() if (c := family_cost(card)) is not None]


def cost_of_arch(name: str) -> FamilyCost:
    """The cost description that offers ``--arch name``; an unknown name is an error listing every arch."""
    found = costs()
    for cost in found:
        if name in cost.archs:
            return cost
    known = [a for cost in found for a in cost.archs]
    raise LiteLVLMError(f"unknown --arch {name!r}; choose one of {', '.join(known)}")


__all__ = ["CostArch", "CountedRow", "FamilyCost", "cost_of_arch", "costs", "counted", "family_cost"]
