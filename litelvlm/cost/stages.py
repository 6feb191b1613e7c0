"""Time by stage of one grounding call (this project's measurement): where the time a user waits for goes.

:class:`StageTimer` times one call of a family's pipeline and splits its time into the named :data:`STAGES`.

Details: docs/efficiency.md (``litelvlm.cost.stages``).
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from typing import Any

import torch

from ..machine.collector import paused_collection
from ..methods import get_method
from .timing import call_length

#: the named stages of a grounding call, in reading order
STAGES = ("prepare", "vision", "selection", "prefill", "decode", "mask")
#: everything outside the named stages: ``total`` less their sum
OTHER = "other"
#: the measured end-to-end time of the call
TOTAL = "total"
#: every column :meth:`StageTimer.time` reports, in order
COLUMNS = (*STAGES, OTHER, TOTAL)
#: the stages a family declares modules for (``GroundingPipeline.stage_modules``)
MODULE_STAGES = ("prepare", "vision", "mask", OTHER)
#: the contract's steps (``GroundingPipeline`` methods) that are a stage on every family: the prompt's
#: making, a method's selection step, the mask head's decoding and its upscaling to the input's size
PIPELINE_STEPS = {"with_sentences": "prepare", "run_clip_stage": "selection", "run_llm_stage": "selection",
                  "decode_masks": "mask", "upscale_masks": "mask"}


def _unique(parts) -> list:
    """``parts`` (modules, (owner, attribute) pairs) without repeats or None (a module two parts share, e.g.
    GLaMM's CLIP tower, is hooked once)."""
    seen: dict = {}
    for p in parts:
        if p is not None:
            seen.setdefault((id(p[0]), p[1]) if isinstance(p, tuple) else id(p), p)
    return list(seen.values())


class StageTimer:
    """Times the :data:`STAGES` of calls of ``pipe`` (a ``GroundingPipeline``); see the module."""

    #: its hooks only read (``litelvlm.llm.captured`` calls them around a captured segment)
    observes_only = True

    def __init__(self, pipe) -> None:
        self.pipe = pipe
        self.cuda = pipe.device.type == "cuda"
        self._active: list[tuple[str, object]] = []
        self._running = False
        self._last: Any = None
        self._ms: dict[str, float] = {}
        self._spans: list = []

    # -- the transitions ----------------------------------------------------------------------------------
    def _current(self) -> str:
        return self._active[-1][0] if self._active else OTHER

    def _mark(self):
        if self.cuda:
            event = torch.cuda.Event(enable_timing=True)
            event.record()
            return event
        return time.perf_counter()

    def _switch(self, before: str) -> None:
        """Close the span of ``before`` when the stage the time goes to has changed."""
        if not self._running or self._current() == before:
            return
        self._close(before)

    def _close(self, stage: str) -> None:
        """Count the time since the last mark to ``stage`` (a CUDA span, or milliseconds on a CPU)."""
        now = self._mark()
        if self.cuda:
            self._spans.append((stage, self._last, now))
        else:
            self._ms[stage] += (now - self._last) * 1e3
        self._last = now

    def _enter(self, stage: str, token: object) -> None:
        before = self._current()
        self._active.append((stage, token))
        self._switch(before)

    def _exit(self, token: object) -> None:
        for i in range(len(self._active) - 1, -1, -1):
            if self._active[i][1] is token:
                before = self._current()
                del self._active[i]
                self._switch(before)
                return

    # -- the hooks ----------------------------------------------------------------------------------------
    def _on_first_layer(self, module, args, kwargs) -> None:
        if any(token is _LLM for _, token in self._active):
            return
        self._enter("decode" if call_length(args, kwargs) == 1 else "prefill", _LLM)

    def _on_last_layer(self, module, args, output) -> None:
        self._exit(_LLM)

    def _module_hooks(self, stage: str, module: torch.nn.Module) -> list:
        def pre(mod, args) -> None:
            self._enter(stage, mod)

        def post(mod, args, output) -> None:
            self._exit(mod)

        return [module.register_forward_pre_hook(pre), module.register_forward_hook(post)]

    def _timed(self, fn: Callable, stage: str, skip: Callable[..., bool] | None = None) -> Callable:
        """``fn`` whose calls count as ``stage`` (but those for which ``skip(*args, **kwargs)`` holds)."""
        @functools.wraps(fn)
        def call(*args, **kwargs):
            if skip is not None and skip(*args, **kwargs):
                return fn(*args, **kwargs)
            token = object()
            self._enter(stage, token)
            try:
                return fn(*args, **kwargs)
            finally:
                self._exit(token)

        return call

    def _tower_context(self, fn: Callable) -> Callable:
        """``tower_context`` whose context's steps (:data:`TOWER_STEPS`: the tower's blocks and a method's
        pruning between them) count as ``vision``."""
        @functools.wraps(fn)
        def call(*args, **kwargs):
            ctx = fn(*args, **kwargs)
            for name in TOWER_STEPS:
                if hasattr(ctx, name):
                    setattr(ctx, name, self._timed(getattr(ctx, name), "vision"))
            return ctx

        return call

    def _wrap(self, patched: list, owner, name: str, wrap: Callable[[Callable], Callable]) -> None:
        """Replace ``owner.name`` by ``wrap`` of it (an instance's or a module's attribute; put back by
        :meth:`_remove`)."""
        owned = vars(owner)
        patched.append((owner, name, name in owned, owned.get(name)))
        setattr(owner, name, wrap(getattr(owner, name)))

    def _install(self, handles: list, patched: list) -> None:
        layers = self.pipe.language_model.layers
        handles.append(layers[0].register_forward_pre_hook(self._on_first_layer, with_kwargs=True))
        handles.append(layers[-1].register_forward_hook(self._on_last_layer))
        declared = self.pipe.stage_modules()
        for stage in MODULE_STAGES:
            for part in _unique(declared.get(stage, ())):
                if isinstance(part, tuple):  # (owner, attribute): a step that is no module's forward
                    self._wrap(patched, *part, lambda fn, stage=stage: self._timed(fn, stage))
                else:
                    handles.extend(self._module_hooks(stage, part))
        # the contract's steps of every family (the baseline's stage step selects nothing: not a selection)
        for name, stage in PIPELINE_STEPS.items():
            self._wrap(patched, self.pipe, name, lambda fn, stage=stage, name=name: self._timed(
                fn, stage, skip=_baseline_step if name in METHOD_STEPS else None))
        self._wrap(patched, self.pipe, "tower_context", self._tower_context)

    def _remove(self, handles: list, patched: list) -> None:
        for h in handles:
            h.remove()
        for owner, name, had, old in reversed(patched):
            if had:
                setattr(owner, name, old)
            else:
                delattr(owner, name)
        handles.clear()
        patched.clear()

    # -- a timed call -------------------------------------------------------------------------------------
    def time(self, fn: Callable[[], Any]) -> tuple[Any, dict[str, float]]:
        """(``fn()``, {stage: ms} over :data:`COLUMNS`), the call run with Python's cycle collector paused
        (:func:`~litelvlm.machine.collector.paused_collection`); the hooks are removed afterwards whatever
        happens."""
        handles: list = []
        patched: list = []
        self._active, self._spans = [], []
        self._ms = dict.fromkeys((*STAGES, OTHER), 0.0)
        with paused_collection():
            try:
                self._install(handles, patched)
                if self.cuda:
                    torch.cuda.synchronize(self.pipe.device)
                start = self._last = self._mark()
                self._running = True
                out = fn()
                self._switch_to_end()
                end = self._last
            finally:
                self._running = False
                self._remove(handles, patched)
                self._active = []
        return out, self._result(start, end)

    def _switch_to_end(self) -> None:
        """Close the last span (whatever is still open counts to its stage up to here)."""
        before = self._current()
        self._active = []
        self._close(before)

    def _result(self, start, end) -> dict[str, float]:
        if self.cuda:
            torch.cuda.synchronize(self.pipe.device)
            for stage, a, b in self._spans:
                self._ms[stage] += a.elapsed_time(b)
            total = start.elapsed_time(end)
        else:
            total = (end - start) * 1e3
        out = {s: float(self._ms[s]) for s in STAGES}
        out[OTHER] = total - sum(out.values())
        out[TOTAL] = float(total)
        return out


#: the steps of a tower-stage context (``litelvlm.pruning.tower.TowerContext``) that run the tower: ``run``
#: (the blocks with a method's choices between them) and the blocks in their branches (IPCV's rule)
TOWER_STEPS = ("run", "embed", "attend", "feed", "finish")
#: the token of the LLM's span (prefill or decode)
_LLM = object()
#: the contract's steps that run a method's stage: (prepared, method, ...) calls
METHOD_STEPS = ("run_clip_stage", "run_llm_stage")


def _baseline_step(prepared=None, method=None, *args, **kwargs) -> bool:
    """Whether a method step's call is the baseline's (``none``: it selects nothing, and its step only hands
    the LLM every token)."""
    return isinstance(method, str) and get_method(method).baseline


def time_stages(pipe, fn: Callable[[], Any]) -> tuple[Any, dict[str, float]]:
    """(``fn()``, {stage: ms} over :data:`COLUMNS`) of one call of ``pipe`` (:class:`StageTimer`)."""
    return StageTimer(pipe).time(fn)


__all__ = ["COLUMNS", "MODULE_STAGES", "OTHER", "STAGES", "TOTAL", "TOWER_STEPS", "StageTimer", "time_stages"]
