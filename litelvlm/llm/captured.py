"""A captured LLM prefill (``--prefill captured``; this project's option): the decoder layers between two
pruning points run as ONE captured callable per (segment, batch size, sequence length), not one layer at a
time from Python.

Details: docs/efficiency.md (``litelvlm.llm.captured``).
"""

from __future__ import annotations

import functools
import logging
from collections import Counter

import torch
from torch import nn
from torch.utils._python_dispatch import _get_current_dispatch_mode

from ..switches import PREFILLS

log = logging.getLogger(__name__)

#: how a segment is captured: ``graph`` (CUDA graphs of the eager layers), ``fused`` (CUDA graphs of the
#: inductor-compiled layers) or ``compile`` (torch.compile of the stack)
CAPTURES = ("graph", "fused", "compile")
#: the attribute of the LLM's decoder stack holding its :class:`CapturedPrefill` (``run_layers`` reads it)
ATTR = "_captured_prefill"
#: untimed calls of a new sequence length before it is captured (CUDA graphs: warm up on a side stream)
WARMUP_CALLS = 2
#: compiled variants kept per segment (one per batch size and sequence length)
RECOMPILE_LIMIT = 256


def call_layers(layers, hidden: torch.Tensor, mask, pe, position_ids: torch.Tensor) -> torch.Tensor:
    """Hidden states after calling each of ``layers`` from Python (the eager prefill: hooks run)."""
    for layer in layers:
        out = layer(hidden, attention_mask=mask, position_embeddings=pe, position_ids=position_ids,
                    use_cache=False)
        hidden = out[0] if isinstance(out, tuple) else out
    return hidden


def default_capture(device: str | torch.device) -> str:
    """How ``--prefill captured`` captures on ``device``: the fused capture (CUDA graphs of inductor-compiled
    layers) on CUDA, ``torch.compile`` of the stack elsewhere."""
    return "fused" if torch.device(device).type == "cuda" else "compile"


def one_layer(layer, hidden: torch.Tensor, mask, pe, position_ids: torch.Tensor) -> torch.Tensor:
    """Hidden states after one decoder ``layer`` (its class's ``forward``: no module hooks)."""
    out = type(layer).forward(layer, hidden, attention_mask=mask, position_embeddings=pe,
                              position_ids=position_ids, use_cache=False)
    return out[0] if isinstance(out, tuple) else out


def run_stack(layers, hidden: torch.Tensor, mask, pe, position_ids: torch.Tensor,
              layer_fn=None) -> torch.Tensor:
    """Hidden states after ``layers`` (each layer's own ``forward``: no module hooks), as ``run_layers`` calls
    them; ``layer_fn``: what runs one layer (default :func:`one_layer`; the fused capture's compiled one)."""
    step = layer_fn or one_layer
    for layer in layers:
        hidden = step(layer, hidden, mask, pe, position_ids)
    return hidden


def _observes(hook) -> bool:
    return bool(getattr(getattr(hook, "__self__", hook), "observes_only", False))


def _tensors(obj) -> list[torch.Tensor]:
    if isinstance(obj, torch.Tensor):
        return [obj]
    if isinstance(obj, (tuple, list)):
        return [t for o in obj for t in _tensors(o)]
    return []


def _key(obj) -> tuple:
    """Shapes and dtypes of the tensors in ``obj`` (None kept apart): what one capture is specialised to."""
    if obj is None:
        return (None,)
    return tuple((tuple(t.shape), t.dtype, t.device) for t in _tensors(obj))


class _Graph:
    """One CUDA graph of :func:`run_stack` over fixed layers and input shapes, with static buffers."""

    def __init__(self, layers, args: tuple, pool, layer_fn=None) -> None:
        self.static = tuple(_clone(a) for a in args)
        stream = torch.cuda.Stream()
        stream.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(stream):
            for _ in range(WARMUP_CALLS):
                run_stack(layers, *self.static, layer_fn=layer_fn)
        torch.cuda.current_stream().wait_stream(stream)
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph, pool=pool):
            self.out = run_stack(layers, *self.static, layer_fn=layer_fn)

    def __call__(self, args: tuple) -> torch.Tensor:
        for dst, src in zip(_tensors(self.static), _tensors(args), strict=True):
            dst.copy_(src)
        self.graph.replay()
        return self.out.clone()


def _clone(obj):
    if isinstance(obj, torch.Tensor):
        return obj.clone()
    if isinstance(obj, (tuple, list)):
        return type(obj)(_clone(o) for o in obj)
    return obj


class CapturedPrefill:
    """The captured segments of one LLM decoder stack (``lm``: ``layers``, ...); :func:`install` puts it on
    ``lm``."""

    def __init__(self, lm: nn.Module, capture: str = "compile", backend: str = "inductor",
                 mode: str | None = None) -> None:
        if capture not in CAPTURES:
            raise ValueError(f"capture must be one of {', '.join(CAPTURES)}; got {capture!r}")
        self.lm, self.capture, self.backend, self.mode = lm, capture, backend, mode
        self._compiled: dict = {}
        self._graphs: dict = {}
        self._layer_fn = None
        self._pool = None
        #: layer calls run captured and eagerly since the last :meth:`reset_counts`
        self.counts: Counter = Counter()
        #: why layers ran eagerly: {reason: layer calls} since the last :meth:`reset_counts`
        self.eager: Counter = Counter()
        #: {reason: the runs (``method@K``) in which layers ran eagerly for it}: :meth:`account`'s, for
        #: :func:`eager_lines`
        self.eager_runs: dict[str, list[str]] = {}

    def record(self) -> dict:
        """The run config's record of this prefill."""
        rec = {"prefill": "captured", "capture": self.capture, "segments": "layers between pruning points"}
        return rec | ({"backend": self.backend, "mode": self.mode or "default"} if self.capture != "graph"
                      else {})

    def reset_counts(self) -> None:
        """Start counting captured and eager layer calls afresh."""
        self.counts, self.eager = Counter(), Counter()

    def account(self, *runs: str) -> None:
        """Put the eager layer calls since :meth:`reset_counts` on the account of ``runs`` (labels such as
        ``fastv@64``: the runs the call served) in :attr:`eager_runs`, and reset the counts: a command names
        each reason once, with its runs (:func:`eager_lines`)."""
        for why in self.eager:
            known = self.eager_runs.setdefault(why, [])
            known.extend(r for r in dict.fromkeys(runs) if r not in known)
        self.reset_counts()

    def path(self) -> str:
        """``captured``, ``eager`` or ``mixed``: how the layer calls since :meth:`reset_counts` ran."""
        cap, eag = self.counts["captured"], self.counts["eager"]
        return "eager" if not cap and eag else "mixed" if cap and eag else "captured"

    def _eager_reason(self, layer: nn.Module, first: bool, last: bool) -> str | None:
        if any(not _observes(h) for h in layer._forward_pre_hooks.values()) or (layer._forward_pre_hooks
                                                                                and not first):
            return "hooks on the decoder layers (e.g. --layer-dtype float32's upcast)"
        if any(not _observes(h) for h in layer._forward_hooks.values()) or (layer._forward_hooks
                                                                            and not last):
            return "hooks on the decoder layers (e.g. --layer-dtype float32's upcast)"
        if any(m._forward_hooks or m._forward_pre_hooks for m in layer.modules() if m is not layer):
            return "hooks inside a decoder layer (an attention reader or a quantization wrapper)"
        return None

    def pieces(self, start: int, stop: int) -> list[tuple[int, int, str | None]]:
        """(first, end, why eager or None) runs covering layers ``start..stop-1``: a layer carrying hooks
        other than observers at the segment's ends runs alone and eagerly."""
        out: list[tuple[int, int, str | None]] = []
        for i in range(start, stop):
            layer = self.lm.layers[i]
            why = self._eager_reason(layer, i == start, i == stop - 1)
            if why is None and nn.modules.module._global_forward_hooks:
                why = "global module hooks"
            if out and out[-1][2] is None and why is None:
                out[-1] = (out[-1][0], i + 1, None)
            else:
                out.append((i, i + 1, why))
        return out

    def run(self, hidden: torch.Tensor, mask, pe, position_ids: torch.Tensor, start: int,
            stop: int) -> torch.Tensor:
        """Hidden states after layers ``start..stop-1``, the segment's captured callable where it can run."""
        layers = self.lm.layers
        why = None
        if torch.is_grad_enabled():
            why = "a forward with autograd enabled"
        elif _get_current_dispatch_mode() is not None:
            why = "a tensor-tracking dispatch mode (a CPU's activation-memory measurement)"
        if why is not None:
            self.eager[why] += stop - start
            self.counts["eager"] += stop - start
            return call_layers(layers[start:stop], hidden, mask, pe, position_ids)
        for first, end, why in self.pieces(start, stop):
            if why is not None:
                self.eager[why] += end - first
                self.counts["eager"] += end - first
                hidden = call_layers(layers[first:end], hidden, mask, pe, position_ids)
                continue
            args, kwargs = self._fire_pre(layers[first], hidden, mask, pe, position_ids)
            before = self.eager.total()
            out = self._captured(first, end, (hidden, mask, pe, position_ids))
            self.counts["captured" if self.eager.total() == before else "eager"] += end - first
            hidden = self._fire_post(layers[end - 1], args, kwargs, out)
        return hidden

    @staticmethod
    def _fire_pre(layer, hidden, mask, pe, position_ids) -> tuple[tuple, dict]:
        args, kwargs = (hidden,), {"attention_mask": mask, "position_embeddings": pe,
                                   "position_ids": position_ids, "use_cache": False}
        # observers only (pieces): their results are ignored
        for hid, hook in layer._forward_pre_hooks.items():
            hook(layer, args, kwargs) if hid in layer._forward_pre_hooks_with_kwargs else hook(layer, args)
        return args, kwargs

    @staticmethod
    def _fire_post(layer, args, kwargs, out: torch.Tensor) -> torch.Tensor:
        for hid, hook in layer._forward_hooks.items():
            hook(layer, args, kwargs, out) if hid in layer._forward_hooks_with_kwargs else hook(
                layer, args, out)
        return out

    def layer_fn(self):
        """The fused capture's compiled :func:`one_layer` (one ``torch.compile`` for every layer), made on
        first use."""
        if self._layer_fn is None:
            raise_recompile_limits(len(self.lm.layers))
            self._layer_fn = torch.compile(one_layer, backend=self.backend, mode=self.mode, dynamic=False)
        return self._layer_fn

    def _captured(self, first: int, end: int, args: tuple) -> torch.Tensor:
        layers = tuple(self.lm.layers[first:end])
        step = self.layer_fn() if self.capture == "fused" else None
        if self.capture == "fused" and args[0].device.type != "cuda":
            return run_stack(layers, *args, layer_fn=step)
        if self.capture == "compile":
            fn = self._compiled.get((first, end))
            if fn is None:
                raise_recompile_limits(len(self.lm.layers))
                fn = torch.compile(functools.partial(run_stack, layers), backend=self.backend, mode=self.mode,
                                   dynamic=False)
                self._compiled[(first, end)] = fn
            if self.mode is not None and "reduce-overhead" in self.mode:
                torch.compiler.cudagraph_mark_step_begin()
                return fn(*args).clone()  # the CUDA graph tree's output is overwritten by its next replay
            return fn(*args)
        key = (first, end, *(_key(a) for a in args))
        if key not in self._graphs:
            try:
                if self._pool is None:
                    self._pool = torch.cuda.graph_pool_handle()
                self._graphs[key] = _Graph(layers, args, self._pool, step)
            # an operation that cannot be captured: this segment runs eagerly, named
            except RuntimeError as err:
                self._graphs[key] = f"CUDA graph capture failed ({str(err).splitlines()[0][:120]})"
                log.warning("layers %d..%d at %s: %s; they run eagerly", first, end - 1, key[2],
                            self._graphs[key])
        graph = self._graphs[key]
        if isinstance(graph, str):
            self.eager[graph] += end - first
            return run_stack(layers, *args, layer_fn=step)
        return graph(args)


def eager_lines(eager_runs: dict[str, list[str]]) -> list[str]:
    """One screen line per reason that decoder layers ran eagerly under a captured prefill, naming its runs
    (:attr:`CapturedPrefill.eager_runs`); none when every layer call was captured."""
    return [f"--prefill captured: decoder-layer calls ran eagerly for {why}: {', '.join(runs)}"
            for why, runs in eager_runs.items()]


def merge_eager_runs(*accounts: dict[str, list[str]]) -> dict[str, list[str]]:
    """The runs of several :attr:`CapturedPrefill.eager_runs` (one per captured prefill of a command), each
    once."""
    out: dict[str, list[str]] = {}
    for account in accounts:
        for why, runs in account.items():
            out.setdefault(why, []).extend(r for r in runs if r not in out[why])
    return out


def raise_recompile_limits(num_layers: int) -> None:
    """Let dynamo keep :data:`RECOMPILE_LIMIT` compiled variants per layer of a stack of ``num_layers`` (one
    compiled function serves every layer); never lowers a limit."""
    dynamo = torch._dynamo.config
    for name in ("recompile_limit", "cache_size_limit", "accumulated_recompile_limit",
                 "accumulated_cache_size_limit"):
        if hasattr(dynamo, name):
            setattr(dynamo, name, max(getattr(dynamo, name), RECOMPILE_LIMIT * num_layers))


def install(lm: nn.Module, capture: str | None = None, backend: str = "inductor",
            mode: str | None = None) -> CapturedPrefill:
    """Capture ``lm``'s prefill from now on (``run_layers`` and the families' LLM forward use it); ``capture``
    None: :func:`default_capture` of ``lm``'s device; ``compile-eager`` / ``fused-eager``: ``compile`` /
    ``fused`` with dynamo's ``eager`` backend; ``mode`` None on CUDA with ``compile``: ``"reduce-overhead"``
    (``fused`` records its own graphs: inductor's default mode)."""
    device = next(lm.parameters()).device
    capture = capture or default_capture(device)
    # traced and replayed by dynamo, no code generated (a quick check on a CPU)
    if capture in ("compile-eager", "fused-eager"):
        capture, backend = capture.split("-")[0], "eager"
    if capture == "graph" and device.type != "cuda":
        raise ValueError("capture='graph' records CUDA graphs: it needs the model on a CUDA device")
    if capture == "compile" and mode is None and device.type == "cuda":
        mode = "reduce-overhead"
    runner = CapturedPrefill(lm, capture, backend, mode)
    lm.__dict__[ATTR] = runner
    return runner


def uninstall(lm: nn.Module) -> None:
    """Back to the eager prefill (each layer from Python)."""
    lm.__dict__.pop(ATTR, None)


def runner_of(lm: nn.Module) -> CapturedPrefill | None:
    """The :class:`CapturedPrefill` installed on ``lm``, or None (the eager prefill)."""
    return lm.__dict__.get(ATTR)


__all__ = ["ATTR", "CAPTURES", "PREFILLS", "CapturedPrefill", "default_capture", "eager_lines", "install",
           "merge_eager_runs", "one_layer", "raise_recompile_limits", "run_stack", "runner_of",
           "uninstall"]
