"""What ``litelvlm validate`` measures in one ``ground`` call of a family's pipeline (the reading of the
paper's "CUDA time" is this project's).

Details: docs/validate.md (``analysis.validate.measure``).
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass

import torch

from analysis.common.measures.layer_timer import LayerLoopTimer
from litelvlm.machine.allocator import release_freed_memory
from litelvlm.machine.collector import paused_collection
from litelvlm.machine.memory import LiveTensorBytes

_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def rss_bytes() -> int:
    """Resident memory of this process now (Linux ``/proc/self/statm``; 0 elsewhere)."""
    try:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * _PAGE
    except OSError:
        return 0


class PeakRSS:
    """Context manager: ``peak`` is the most resident memory seen while the block ran (5 ms sampling), after
    the memory glibc kept free from earlier work went back to the kernel
    (:mod:`litelvlm.machine.allocator`)."""

    def __init__(self, interval: float = 0.005) -> None:
        self.interval = interval
        self.peak = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, rss_bytes())
            self._stop.wait(self.interval)

    def __enter__(self) -> PeakRSS:
        release_freed_memory()   # what the allocator kept from earlier work is not this block's
        self.peak = rss_bytes()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.peak = max(self.peak, rss_bytes())


@dataclass
class RunRecord:
    """One probed call."""

    embedded_ids: torch.Tensor | None = None     # the ids embedded before the first decoder layer
    llm_input_len: int | None = None
    prefill_start: float | None = None
    prefill_end: float | None = None
    e2e_ms: float = 0.0
    peak_rss: int = 0
    activation_bytes: int = 0
    llm_activation_bytes: int = 0
    paper_prefill_ms: float = float("nan")
    cuda_time_reading_ms: float = float("nan")

    @property
    def prefill_ms(self) -> float:
        if self.prefill_start is None or self.prefill_end is None:
            return float("nan")
        return (self.prefill_end - self.prefill_start) * 1e3


class RunProbe:
    """Hooks on the pipeline's LLM that fill a :class:`RunRecord` for each ``probe(fn)`` call."""

    #: its hooks only read (``litelvlm.llm.captured`` calls them around a captured segment)
    observes_only = True

    def __init__(self, pipe) -> None:
        self.pipe = pipe
        self.cuda = pipe.device.type == "cuda"
        self.record = RunRecord()
        self.tracker: LiveTensorBytes | None = None
        self._span_base = 0
        # the ids of the embedding calls before the first decoder layer
        self._embedded: list[torch.Tensor] = []

    def _level(self) -> int:
        """Bytes held now by what the call created (CPU tracker) or allocated (CUDA)."""
        return torch.cuda.memory_allocated(self.pipe.device) if self.cuda else self.tracker.live

    def _span_peak(self) -> int:
        return torch.cuda.max_memory_allocated(self.pipe.device) if self.cuda else self.tracker.peak

    def _reset_span(self) -> None:
        """Start the LLM span's memory peak at the current level."""
        if self.cuda:
            torch.cuda.reset_peak_memory_stats(self.pipe.device)
        else:
            self.tracker.peak = self.tracker.live
        self._span_base = self._level()

    def _now(self) -> float:
        if self.cuda:
            torch.cuda.synchronize(self.pipe.device)
        return time.perf_counter()

    def _on_embed(self, module, args) -> None:
        """The ids embedded before the first decoder layer runs: the first forward's text (GLaMM embeds it in
        one call, UniPixel in two, around its visual tokens)."""
        # joined after the call (no tensor made inside the measured span)
        if self.record.prefill_start is None:
            self._embedded.append(args[0].detach().cpu().reshape(-1))

    def _on_first_layer(self, module, args, kwargs) -> None:
        hidden = args[0] if args else kwargs["hidden_states"]
        rec = self.record
        if rec.llm_input_len is None:
            rec.llm_input_len = int(hidden.shape[1])
        if rec.prefill_start is None:
            rec.prefill_start = self._now()
            self._outer_peak = self._span_peak()
            self._reset_span()

    def _on_norm(self, module, args, output) -> None:
        self.record.prefill_end = self._now()
        self.record.llm_activation_bytes = max(self.record.llm_activation_bytes,
                                               self._span_peak() - self._span_base)

    def probe(self, fn) -> tuple[object, RunRecord]:
        """(``fn()``, its record); hooks are removed afterwards whatever happens."""
        lm = self.pipe.language_model
        self.record = RunRecord()
        self._embedded = []
        handles = [lm.embed_tokens.register_forward_pre_hook(self._on_embed),
                   lm.layers[0].register_forward_pre_hook(self._on_first_layer, with_kwargs=True),
                   lm.norm.register_forward_hook(self._on_norm)]

        try:
            with LayerLoopTimer(lm.layers, self.pipe.device) as loop:
                out, rec = self._measured(fn)
            rec.paper_prefill_ms = loop.ms if loop.forwards else float("nan")
            rec.embedded_ids = torch.cat(self._embedded) if self._embedded else None
        finally:
            for h in handles:
                h.remove()
        return out, rec

    def _measured(self, fn) -> tuple[object, RunRecord]:
        rec = self.record
        device = self.pipe.device
        if self.cuda:
            torch.cuda.synchronize(device)
            torch.cuda.reset_peak_memory_stats(device)
            base = torch.cuda.memory_allocated(device)
        self.tracker = tracker = None if self.cuda else LiveTensorBytes()
        self._outer_peak = 0
        with PeakRSS() as rss:
            t0 = self._now()
            if self.cuda:  # the official timer's way (CUDA events), around the whole call
                start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                start.record()
            if tracker is None:
                out = fn()
            else:
                with tracker:
                    out = fn()
            if self.cuda:
                end.record()
            rec.e2e_ms = (self._now() - t0) * 1e3
        rec.cuda_time_reading_ms = start.elapsed_time(end) if self.cuda else rec.e2e_ms
        rec.peak_rss = rss.peak
        # the whole call's peak: the larger of the peak before the LLM span reset it and the one after
        peak = max(self._outer_peak, self._span_peak())
        rec.activation_bytes = peak - base if self.cuda else peak
        return out, rec


def timed_ms(fn, device: torch.device) -> tuple[object, float]:
    """(``fn()``, its wall time in ms; CUDA synchronised), the call run with Python's cycle collector paused
    as the stage timer runs its call (:func:`~litelvlm.machine.collector.paused_collection`)."""
    with paused_collection():
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        t0 = time.perf_counter()
        out = fn()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        ms = (time.perf_counter() - t0) * 1e3
    return out, ms


__all__ = ["PeakRSS", "RunProbe", "RunRecord", "rss_bytes", "timed_ms"]
