"""Captured image encoders (``--encoders``; this project's option): a family's image encoders run as one CUDA
graph per input shape instead of hundreds of kernels launched from Python, or (``fused``) that graph over the
encoder's layers run through one inductor-compiled layer function (``--encoders eager`` is the official path).

Details: docs/efficiency.md (``litelvlm.lvlm.encoders``).
"""

from __future__ import annotations

import functools
import logging
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import torch
from torch import nn
from torch.utils import _pytree as pytree
from torch.utils._python_dispatch import _get_current_dispatch_mode

from ..llm.captured import raise_recompile_limits
from ..switches import CUDA_MODES, ENCODER_CHOICES

log = logging.getLogger(__name__)

#: untimed calls of a new key before its graph is recorded (on a side stream)
WARMUP_CALLS = 2
#: keys captured per module; a module called with more distinct inputs runs the rest eagerly
MAX_KEYS = 32
#: an integer tensor of at most this many elements is keyed by its values (a grid, sizes)
VALUE_KEYED = 64
#: the attribute of a pipeline holding its :class:`CapturedEncoders`
ATTR = "_captured_encoders"


def default_mode(device: str | torch.device) -> str:
    """What ``--encoders auto`` is on ``device``: ``graph`` on CUDA, ``eager`` elsewhere."""
    return "graph" if torch.device(device).type == "cuda" else "eager"


def resolve_mode(mode: str, device: str | torch.device) -> str:
    """``mode`` with ``auto`` resolved; ``graph`` and ``fused`` off CUDA are refused (ValueError)."""
    if mode not in ENCODER_CHOICES:
        raise ValueError(f"encoders must be one of {', '.join(ENCODER_CHOICES)}; got {mode!r}")
    mode = default_mode(device) if mode == "auto" else mode
    if mode in CUDA_MODES and torch.device(device).type != "cuda":
        raise ValueError(f"--encoders {mode} records CUDA graphs: it needs a CUDA device (got {device})")
    return mode


@dataclass(frozen=True)
class Indexed:
    """An encoder ``module`` whose forward takes precomputed index tensors: ``index(*args, **kwargs)`` gives
    them, as keyword arguments of the forward, for the forward's own arguments."""

    module: nn.Module
    index: Callable[..., dict]


def module_of(entry: nn.Module | Indexed) -> nn.Module:
    """The module of an :meth:`encoder_modules` entry."""
    return entry.module if isinstance(entry, Indexed) else entry


class _Unkeyable(Exception):
    """An argument that cannot key a capture (the call runs eagerly)."""


def _leaf_key(leaf) -> tuple:
    if isinstance(leaf, torch.Tensor):
        small_int = not leaf.is_floating_point() and not leaf.is_complex() and leaf.numel() <= VALUE_KEYED
        return ("T", tuple(leaf.shape), leaf.dtype, leaf.device, tuple(leaf.flatten().tolist())
                if small_int else None)
    try:
        hash(leaf)
    except TypeError as err:
        raise _Unkeyable(f"an unhashable argument ({type(leaf).__name__})") from err
    return ("V", type(leaf).__name__, leaf)


def call_key(args: tuple, kwargs: dict) -> tuple:
    """What one capture is specialised to: the argument tree's structure and each leaf's key (tensors:
    shape, dtype, device and, for small integer tensors, values; others: their value)."""
    leaves, spec = pytree.tree_flatten((args, kwargs))
    return (str(spec), *(_leaf_key(leaf) for leaf in leaves))


def layer_stack(module: nn.Module) -> nn.ModuleList | None:
    """``module``'s repeated layers (``fused`` runs each through one compiled function): the ``ModuleList``
    inside it of two or more modules of one class that holds the most parameters; None where it has none."""
    best, most = None, -1
    for m in module.modules():
        if isinstance(m, nn.ModuleList) and len(m) > 1 and len({type(x) for x in m}) == 1:
            n = sum(p.numel() for p in m.parameters())
            best, most = (m, n) if n > most else (best, most)
    return best


def one_layer(layer: nn.Module, *args, **kwargs):
    """One layer through its class's ``forward`` (its hooks run around it, from its ``__call__``): what
    ``fused`` compiles once for every layer of a stack."""
    return type(layer).forward(layer, *args, **kwargs)


def _clone(x):
    return x.clone() if isinstance(x, torch.Tensor) else x


class _Graph:
    """One CUDA graph of ``fn`` over fixed inputs, with static input buffers. Its warm-up and recording run
    with the encoder's device as the default device (``torch.device`` as a context), so that a tensor the
    forward makes without naming a device (SAM's relative-position indices, ``torch.arange`` on the CPU in
    transformers' ``SamVisionAttention.get_rel_pos``) is made on the device, where the recording can hold it,
    instead of being copied there from the host (which no CUDA graph can record). Integer ranges and their
    products by the same scale give the same values on either device."""

    def __init__(self, fn, args: tuple, kwargs: dict, pool, device: torch.device) -> None:
        #: what is recorded, and the tensors it binds (an Indexed encoder's index tensors): the replay reads
        #: them where the recording saw them, so the graph keeps them alive
        self.fn = fn
        self.static = pytree.tree_map(_clone, (args, kwargs))
        stream = torch.cuda.Stream()
        stream.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(stream), device:
            for _ in range(WARMUP_CALLS):
                fn(*self.static[0], **self.static[1])
        torch.cuda.current_stream().wait_stream(stream)
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph, pool=pool), device:
            self.out = fn(*self.static[0], **self.static[1])

    def __call__(self, args: tuple, kwargs: dict):
        for dst, src in zip(pytree.tree_leaves(self.static), pytree.tree_leaves((args, kwargs)), strict=True):
            if isinstance(dst, torch.Tensor):
                dst.copy_(src)
        self.graph.replay()
        return pytree.tree_map(_clone, self.out)


def _foreign(hook) -> bool:
    """A hook that is not transformers' own output capture (``output_hidden_states``: part of the forward,
    run while it is recorded, its tensors the static outputs a replay refreshes)."""
    return not getattr(hook, "__module__", "").startswith("transformers.")


def _hooked_inside(inner: list[nn.Module]) -> bool:
    return any(_foreign(h) for m in inner
               for h in (*m._forward_hooks.values(), *m._forward_pre_hooks.values()))


class CapturedEncoder:
    """One encoder module's captured ``forward`` (see the module); installed as the instance's ``forward``."""

    def __init__(self, module: nn.Module, mode: str, pool=None,
                 index: Callable[..., dict] | None = None) -> None:
        self.module, self.mode, self.pool, self.index = module, mode, pool, index
        #: its submodules, listed once (each call checks them for hooks)
        self._inner = [m for m in module.modules() if m is not module]
        self._graphs: dict = {}
        self._compiled = None
        #: the layers ``fused`` runs through the compiled :func:`one_layer` (None: the whole forward compiled)
        self.stack = layer_stack(module) if mode.startswith("fused") else None
        #: calls run captured (``captured``) and eagerly (``eager``)
        self.counts: Counter = Counter()
        #: why calls ran eagerly: {reason: calls}
        self.eager: Counter = Counter()

    def eager_forward(self, *args, **kwargs):
        """The module's own ``forward`` (the official eager path)."""
        return type(self.module).forward(self.module, *args, **kwargs)

    def fused_forward(self, *args, **kwargs):
        """The module's own ``forward`` with each layer of :attr:`stack` run through the one compiled layer
        function (the whole forward compiled where the module has no stack)."""
        step = self._compile()
        if self.stack is None:
            return step(*args, **kwargs)
        for layer in self.stack:   # for this call only: an eager fallback runs the layers' own forward
            vars(layer)["forward"] = functools.partial(step, layer)
        try:
            return self.eager_forward(*args, **kwargs)
        finally:
            for layer in self.stack:
                vars(layer).pop("forward", None)

    def _why_eager(self, args: tuple, kwargs: dict) -> str | None:
        if torch.is_grad_enabled():
            return "autograd enabled"
        if _get_current_dispatch_mode() is not None:
            return "a tensor-tracking dispatch mode (a FLOP count or a memory measurement)"
        if _hooked_inside(self._inner) or nn.modules.module._global_forward_hooks:
            return "hooks inside the encoder (an attention reader or a quantization wrapper)"
        if self.mode in CUDA_MODES:
            device = next(self.module.parameters()).device
            leaves = pytree.tree_leaves((args, kwargs))
            if any(isinstance(t, torch.Tensor) and t.device != device for t in leaves):
                return "an input off the encoder's device"
        return None

    def __call__(self, *args, **kwargs):
        why = self._why_eager(args, kwargs)
        if why is None and self.mode not in CUDA_MODES:   # compile, compile-eager, fused-eager: no graph
            self.counts["captured"] += 1
            fn = self.fused_forward if self.mode == "fused-eager" else self._compile()
            return fn(*args, **kwargs, **self._index(args, kwargs))
        key = None
        if why is None:
            try:
                key = call_key(args, kwargs)
            except _Unkeyable as err:
                why = str(err)
        if why is None:
            graph = self._graph(key, args, kwargs)
            if not isinstance(graph, str):
                self.counts["captured"] += 1
                return graph(args, kwargs)
            why = graph
        self.eager[why] += 1
        self.counts["eager"] += 1
        return self.eager_forward(*args, **kwargs)

    def _compile(self):
        if self._compiled is None:
            backend = "eager" if self.mode.endswith("-eager") else "inductor"
            fn = functools.partial(type(self.module).forward, self.module)
            if self.stack is not None:
                raise_recompile_limits(len(self.stack))
                fn = one_layer
            self._compiled = torch.compile(fn, backend=backend, dynamic=False)
        return self._compiled

    def _index(self, args: tuple, kwargs: dict) -> dict:
        """The precomputed index tensors of this call (none for a module not :class:`Indexed`)."""
        return {} if self.index is None else self.index(*args, **kwargs)

    def _graph(self, key: tuple, args: tuple, kwargs: dict):
        if key not in self._graphs:
            if len(self._graphs) >= MAX_KEYS:
                return f"more than {MAX_KEYS} input shapes"
            try:
                device = next(self.module.parameters()).device
                forward = self.fused_forward if self.mode == "fused" else self.eager_forward
                fn = functools.partial(forward, **self._index(args, kwargs))
                self._graphs[key] = _Graph(fn, args, kwargs, self.pool, device)
            except RuntimeError as err:  # an operation that cannot be captured: this key runs eagerly, named
                torch.cuda.synchronize()
                self._graphs[key] = f"CUDA graph capture failed ({str(err).splitlines()[0][:120]})"
                log.warning("%s: %s; it runs eagerly", type(self.module).__name__, self._graphs[key])
        return self._graphs[key]


class CapturedEncoders:
    """The captured encoders of one pipeline (:func:`install` puts it on the pipeline)."""

    def __init__(self, modules: Iterable[nn.Module | Indexed], mode: str) -> None:
        self.mode = mode
        self.pool = torch.cuda.graph_pool_handle() if mode in CUDA_MODES else None
        self.encoders: dict[int, CapturedEncoder] = {}
        self.add(modules)

    def add(self, modules: Iterable[nn.Module | Indexed]) -> None:
        """Capture ``modules`` too, each once; a module inside another captured one is left to it (its
        outermost encoder is the one captured)."""
        entries = [e for e in modules if e is not None]
        indexes = {id(e.module): e.index for e in entries if isinstance(e, Indexed)}
        modules = list(dict.fromkeys(module_of(e) for e in entries))
        known = [e.module for e in self.encoders.values()]
        for m in modules:
            inside = [o for o in [*known, *modules] if o is not m and any(s is m for s in o.modules())]
            if id(m) in self.encoders or inside:
                continue
            for o in [o for o in known if any(s is o for s in m.modules())]:  # m holds a captured one
                self._drop(o)
            enc = CapturedEncoder(m, self.mode, self.pool, indexes.get(id(m)))
            self.encoders[id(m)] = enc
            m.forward = enc
            known = [e.module for e in self.encoders.values()]

    def _drop(self, module: nn.Module) -> None:
        enc = self.encoders.pop(id(module))
        if module.__dict__.get("forward") is enc:
            del module.__dict__["forward"]

    def record(self) -> dict:
        """The run config's record: the mode and the encoders' classes."""
        names = sorted({type(e.module).__name__ for e in self.encoders.values()})
        return {"encoders": self.mode, "captured_encoders": names}

    def eager_reasons(self) -> Counter:
        """{reason: calls} that ran eagerly, over every encoder."""
        out: Counter = Counter()
        for enc in self.encoders.values():
            out.update({f"{type(enc.module).__name__}: {why}": n for why, n in enc.eager.items()})
        return out

    def remove(self) -> None:
        """Back to each module's own ``forward``."""
        for enc in list(self.encoders.values()):
            self._drop(enc.module)


def install(pipe, mode: str = "auto") -> CapturedEncoders | None:
    """Capture ``pipe``'s encoders (:meth:`encoder_modules`) in ``mode`` (``auto``: :func:`default_mode` of
    its device); None where the mode is ``eager`` (nothing changed). Replaces an earlier installation."""
    uninstall(pipe)
    mode = resolve_mode(mode, pipe.device)
    if mode == "eager":
        return None
    runner = CapturedEncoders(pipe.encoder_modules(), mode)
    vars(pipe)[ATTR] = runner
    return runner


def adopt(pipe) -> None:
    """Capture what ``pipe``'s :meth:`encoder_modules` holds now (a paired CLIP loaded on first use) where
    encoders are captured; nothing otherwise."""
    runner = runner_of(pipe)
    if runner is not None:
        runner.add(pipe.encoder_modules())


def uninstall(pipe) -> None:
    """Back to the eager encoders."""
    runner = vars(pipe).pop(ATTR, None)
    if runner is not None:
        runner.remove()


def runner_of(pipe) -> CapturedEncoders | None:
    """The :class:`CapturedEncoders` installed on ``pipe``, or None (eager encoders)."""
    return vars(pipe).get(ATTR)


__all__ = ["CUDA_MODES", "CapturedEncoder", "CapturedEncoders", "Indexed", "adopt",
           "call_key", "default_mode", "install", "layer_stack", "module_of", "one_layer", "resolve_mode",
           "runner_of", "uninstall"]
