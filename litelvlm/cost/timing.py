"""Wall time (synchronised, warm-ups first, median over repeats), summed CUDA kernel time, and the paper's
prefill time.

The paper's "Prefill Time": a timer around the LLM's decoder-layer loop only, as the authors' compiled code.

``modeling_llama_fastv.cpython-310.pyc`` (sejong-rcv/LiteLVLM @5896153), ``LlamaModel.forward`` (first line
621): L693 ``if hidden_states.shape[1] != 1:`` two ``torch.cuda.Event(enable_timing=True)``, synchronise and
record the start (L694-697), just before L699 ``for idx, decoder_layer in enumerate(self.layers)``; after the
loop, before the final norm (L865), L850-855 record the end, synchronise and add ``elapsed_time`` (ms) to
``total_cuda_time``, summed over forwards. No embedding, final norm, LM head, CLIP or SAM is inside.

:class:`LayerLoopTimer` does the same with hooks (no model code changed): a forward pre-hook on the first
decoder layer starts a span (CUDA events on a GPU, ``time.perf_counter`` on a CPU), a forward hook on the
last decoder layer ends it; spans of sequences of length 1 (decode steps) are skipped, as in the official
code, and the spans of one timed block are summed. A method that runs the LLM in pieces (FastV's pruning
inside the loop) stays in one span, as the official in-loop pruning does.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import torch
from torch.profiler import ProfilerActivity, profile


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def wall_time_ms(fn: Callable[[], object], device: str | torch.device = "cpu", *, warmup: int = 2,
                 repeats: int = 5) -> dict[str, float]:
    """Median, min and max wall time (ms) of ``fn`` over ``repeats`` calls after ``warmup`` calls."""
    return interleaved_wall_ms({0: fn}, device, warmup=warmup, repeats=repeats)[0]


def cuda_time_ms(fn: Callable[[], object], device: str | torch.device = "cuda", repeats: int = 3) -> float:
    """Summed CUDA kernel time (ms) of one call of ``fn`` (median of ``repeats`` profiled calls);
    NaN when ``device`` is not a CUDA device."""
    device = torch.device(device)
    if device.type != "cuda":
        return float("nan")

    totals = []
    with torch.no_grad():
        for _ in range(repeats):
            _sync(device)
            with profile(activities=[ProfilerActivity.CUDA]) as prof:
                fn()
                _sync(device)
            us = sum(e.self_device_time_total for e in prof.key_averages())
            totals.append(us / 1e3)
    return statistics.median(totals)


def interleaved_wall_ms(fns: dict, device: str | torch.device = "cpu", *, warmup: int = 2,
                        repeats: int = 5) -> dict:
    """Wall time (ms) of every callable in ``fns``, timed round-robin: each round calls each one once, so
    a slow spell of a shared machine hits all of them alike. Returns {key: {median, min, max, repeats, times}}
    (``times``: the timed calls in round order, so that round i of two keys can be paired)."""
    device = torch.device(device)
    times: dict = {k: [] for k in fns}
    with torch.no_grad():
        for i in range(warmup + repeats):
            for key, fn in fns.items():
                _sync(device)
                t0 = time.perf_counter()
                out = fn()
                _sync(device)
                dt = (time.perf_counter() - t0) * 1e3
                del out
                if i >= warmup:
                    times[key].append(dt)
    return {k: {"median": statistics.median(v), "min": min(v), "max": max(v), "repeats": repeats, "times": v}
            for k, v in times.items()}


def call_length(args: tuple, kwargs: dict) -> int:
    """The sequence length of a decoder layer's call (its hidden states' second axis; 1: a decode step)."""
    hidden = args[0] if args else kwargs["hidden_states"]
    return int(hidden.shape[1])


class LayerLoopTimer:
    """Context manager: ``ms`` is the time spent inside ``layers[0]`` .. ``layers[-1]`` of the LLM (summed
    over prefill forwards), ``forwards`` the number of such spans; ``layers`` is the LLM's decoder-layer
    list."""

    #: its hooks only read (``litelvlm.llm.captured`` calls them around a captured segment)
    observes_only = True

    def __init__(self, layers, device: str | torch.device = "cpu") -> None:
        self.layers = layers
        self.cuda = torch.device(device).type == "cuda"
        self.ms = 0.0
        self.forwards = 0
        self._start = None
        self._cuda_spans: list = []
        self._handles: list = []

    def _on_first(self, module, args, kwargs) -> None:
        if self._start is not None or call_length(args, kwargs) == 1:
            return
        if self.cuda:
            torch.cuda.synchronize()  # L696
            self._start = torch.cuda.Event(enable_timing=True)
            self._start.record()  # L697
        else:
            self._start = time.perf_counter()

    def _on_last(self, module, args, output) -> None:
        if self._start is None:
            return
        if self.cuda:
            end = torch.cuda.Event(enable_timing=True)
            end.record()  # L851
            self._cuda_spans.append((self._start, end))
        else:
            self.ms += (time.perf_counter() - self._start) * 1e3
        self.forwards += 1
        self._start = None

    def __enter__(self) -> LayerLoopTimer:
        self.ms, self.forwards, self._start, self._cuda_spans = 0.0, 0, None, []
        self._handles = [self.layers[0].register_forward_pre_hook(self._on_first, with_kwargs=True),
                         self.layers[-1].register_forward_hook(self._on_last)]
        return self

    def __exit__(self, *exc) -> None:
        for h in self._handles:
            h.remove()
        self._handles = []
        if self._cuda_spans:
            torch.cuda.synchronize()  # L852
            self.ms += sum(start.elapsed_time(end) for start, end in self._cuda_spans)  # L854-855
            self._cuda_spans = []
        self._start = None


def llm_layers(pipe):
    """The decoder-layer list of a grounding pipeline's LLM (``pipe.language_model.layers``)."""
    return pipe.language_model.layers
