"""FLOPs and weight bytes by stage of one grounding call, and each stage's roofline (this project's
measurement).

Details: docs/efficiency.md (``litelvlm.cost.stage_count``).
"""

from __future__ import annotations

import logging
import math
from collections import Counter
from collections.abc import Callable
from typing import Any, NamedTuple

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten
from torch.utils.flop_counter import flop_registry

from ..llm.captured import runner_of
from ..lvlm import encoders
from ..machine.memory import weight_modules, weight_storages
from .stages import COLUMNS, OTHER, STAGES, TOTAL, StageTimer

aten = torch.ops.aten
log = logging.getLogger(__name__)


def sdpa_flops(query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, *args, out_val=None,
               **kwargs) -> int:
    """FLOPs of a fused attention kernel on (batch, heads, length, dim) inputs: both products over the full
    scores, 2 x length_q x length_k x (dim + value dim) per query head, a key/value head serving each head of
    its group (grouped-query attention, which torch 2.11's formula refuses)."""
    *batch, heads, s_q, d = query.shape
    return 2 * math.prod(batch) * heads * s_q * int(key.shape[-2]) * (d + int(value.shape[-1]))


#: the fused attention kernels on (batch, heads, length, dim) inputs, CUDA's and the CPU's
SDPA_KERNELS = (aten._scaled_dot_product_efficient_attention, aten._scaled_dot_product_flash_attention,
                aten._scaled_dot_product_cudnn_attention, aten._scaled_dot_product_flash_attention_for_cpu)
#: the FLOP formula of each aten op (overload packet): ``torch.utils.flop_counter``'s, the fused attention
#: kernels' by :func:`sdpa_flops` (the CPU's too, which ``FlopCounterMode`` leaves out)
FLOP_FORMULAS = {**flop_registry, **dict.fromkeys(SDPA_KERNELS, sdpa_flops)}
#: ops that read rows of a weight: their output's bytes are what they read of it
GATHERS = frozenset({aten.embedding, aten.index_select, aten.index, aten.gather})
#: stages that run on the host, not the device: their roofline on the device counts 0
HOST_STAGES = ("prepare",)


class StageCount(NamedTuple):
    """FLOPs and weight bytes one stage of a call did and read."""

    flops: int
    weight_bytes: int


def _storage_id(t: torch.Tensor) -> int | None:
    try:
        return t.untyped_storage()._cdata
    except (RuntimeError, NotImplementedError, TypeError):  # a wrapper subclass without a storage
        return None


def _accounts(pipe) -> list:
    """The captured paths of ``pipe`` that count their eager calls (``counts``, ``eager``): the prefill's
    runner and each captured encoder."""
    runner, captured = runner_of(pipe.language_model), encoders.runner_of(pipe)
    found = [runner, *(captured.encoders.values() if captured is not None else ())]
    return [r for r in found if r is not None]


def _nbytes(out: Any) -> int:
    return sum(t.numel() * t.element_size() for t in tree_flatten(out)[0] if isinstance(t, torch.Tensor))


class _CountingMode(TorchDispatchMode):
    """Counts each aten op's FLOPs and weight reads to the counter's current stage."""

    def __init__(self, counter: StageCounter) -> None:
        super().__init__()
        self.counter = counter

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        packet = func._overloadpacket
        if packet not in FLOP_FORMULAS and func is not torch.ops.prim.device.default:
            with self:  # a composite op: its parts are counted (FlopCounterMode's rule)
                out = func.decompose(*args, **kwargs)
            if out is not NotImplemented:
                return out
        out = func(*args, **kwargs)
        self.counter._add(func, packet, args, kwargs, out)
        return out


class StageCounter(StageTimer):
    """Counts the FLOPs and weight bytes of the :data:`~litelvlm.cost.stages.STAGES` of a call of ``pipe`` (a
    ``GroundingPipeline``); see the module. Its stages are :class:`~litelvlm.cost.stages.StageTimer`'s."""

    def __init__(self, pipe) -> None:
        super().__init__(pipe)
        self._weights: dict[int, int] = {}
        self._flops: dict[str, int] = {}
        self._bytes: dict[str, int] = {}
        self._seen: dict[str, set[int]] = {}
        #: {op: calls} whose FLOP formula refused their inputs (counted 0, named in a warning)
        self.uncounted: Counter = Counter()

    # -- the stretches: a stage's weights count again when the call enters it again ------------------------
    def _enter(self, stage: str, token: object) -> None:
        if stage != self._current() and all(s != stage for s, _ in self._active):
            self._seen[stage] = set()
        super()._enter(stage, token)

    def _exit(self, token: object) -> None:
        before = self._current()
        super()._exit(token)
        if not self._active and before != OTHER:  # back between the named stages: a new stretch of other
            self._seen[OTHER] = set()

    def _add(self, func, packet, args: tuple, kwargs: dict, out: Any) -> None:
        """Count one op's FLOPs and the weights it reads to the current stage."""
        stage = self._current()
        formula = FLOP_FORMULAS.get(packet)
        try:
            self._flops[stage] += int(formula(*args, **kwargs, out_val=out)) if formula is not None else 0
        except (AssertionError, RuntimeError, TypeError, ValueError):  # a formula refusing these inputs
            self.uncounted[str(packet)] += 1
        if func.is_view:
            return
        seen = self._seen.setdefault(stage, set())
        for t in tree_flatten((args, kwargs))[0]:
            if not isinstance(t, torch.Tensor) or (key := _storage_id(t)) not in self._weights:
                continue
            if packet in GATHERS:
                self._bytes[stage] += min(_nbytes(out), self._weights[key])
            elif key not in seen:
                seen.add(key)
                self._bytes[stage] += self._weights[key]

    # -- a counted call ------------------------------------------------------------------------------------
    def count(self, fn: Callable[[], Any]) -> tuple[Any, dict[str, StageCount]]:
        """(``fn()``, {stage: :class:`StageCount`} over :data:`~litelvlm.cost.stages.COLUMNS`); the hooks and
        the mode are gone afterwards whatever happens."""
        self._weights = weight_storages(*weight_modules(self.pipe).values(), buffers=False)
        self._flops = dict.fromkeys((*STAGES, OTHER), 0)
        self._bytes = dict.fromkeys((*STAGES, OTHER), 0)
        self._seen, self.uncounted = {}, Counter()
        accounts = [(r, r.counts.copy(), r.eager.copy()) for r in _accounts(self.pipe)]

        def counted():
            with _CountingMode(self):
                return fn()

        try:
            out, _ = self.time(counted)
        finally:
            for r, calls, eager in accounts:  # the eager calls of a count are no run's
                r.counts, r.eager = calls, eager
        if self.uncounted:
            log.warning("FLOPs not counted (the formula refused the inputs): %s",
                        ", ".join(f"{op} x{n}" for op, n in self.uncounted.items()))
        counts = {s: StageCount(self._flops[s], self._bytes[s]) for s in (*STAGES, OTHER)}
        counts[TOTAL] = StageCount(sum(c.flops for c in counts.values()),
                                   sum(c.weight_bytes for c in counts.values()))
        return out, counts


def count_stages(pipe, fn: Callable[[], Any]) -> tuple[Any, dict[str, StageCount]]:
    """(``fn()``, {stage: :class:`StageCount`} over :data:`~litelvlm.cost.stages.COLUMNS`) of one call of
    ``pipe`` (:class:`StageCounter`)."""
    return StageCounter(pipe).count(fn)


def known_rate(value: float | None) -> bool:
    """Whether ``value`` is a usable rate (a positive, finite number)."""
    return value is not None and math.isfinite(value) and value > 0


def stage_roofline_ms(flops: float, weight_bytes: float, tflops: float | None, gbps: float | None) -> float:
    """max(``flops`` / (``tflops`` x 1e12), ``weight_bytes`` / (``gbps`` x 1e9)) in ms; NaN when either rate
    is unknown."""
    if not (known_rate(tflops) and known_rate(gbps)):
        return math.nan
    return max(flops / (tflops * 1e12), weight_bytes / (gbps * 1e9)) * 1e3


def rooflines_ms(counts: dict[str, StageCount], tflops: float | None, gbps: float | None) -> dict[str, float]:
    """{stage: roofline ms} over :data:`~litelvlm.cost.stages.COLUMNS` of ``counts``
    (:meth:`StageCounter.count`); a host stage's is 0, ``total``'s the sum of the others."""
    out = {s: 0.0 if s in HOST_STAGES else stage_roofline_ms(*counts[s], tflops, gbps)
           for s in COLUMNS if s != TOTAL}
    out[TOTAL] = sum(out.values())
    return out


__all__ = ["FLOP_FORMULAS", "GATHERS", "HOST_STAGES", "SDPA_KERNELS", "StageCount", "StageCounter",
           "count_stages", "known_rate", "rooflines_ms", "sdpa_flops", "stage_roofline_ms"]
