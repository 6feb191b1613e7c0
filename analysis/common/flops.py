"""FLOPs of the GLaMM pipeline per method and budget: the analytic count and FlopCounterMode's.

Conventions (n tokens, a Llama-style decoder with d, L, m, V; k = the width of the key and value
projections, ``num_key_value_heads`` x head_dim: k = d for Llama-2-7B's multi-head attention, less for
Qwen2.5-VL's grouped-query attention; ``4·n·d²`` below is ``2·n·d² + 2·n·d·k`` when k < d):

* ``exact``: 2·L·(4·n·d² + 2·n²·d + 3·n·d·m) + 2·n·d·V floating-point operations (a multiply-add
  is 2; q/k/v/o projections, the two attention matmuls over the full n×n score matrix, SwiGLU's three
  matrices, the LM head on every position). FlopCounterMode counts exactly this.
* ``fastv``: the FastV paper's L·(4·n·d² + 2·n²·d + 2·n·d·m): multiply-accumulates, a two-matrix FFN,
  no LM head.
* ``mac_swiglu``: L·(4·n·d² + 2·n²·d + 3·n·d·m) multiply-accumulates (no LM head), i.e. half the
  exact count without the head. The LiteLVLM paper's 4.66 / 2.11 / 1.27 "TB" follow this one.

Tied embeddings (Qwen2.5-VL-3B) change no count: the LM head's matmul runs with the tied matrix all the same.

One token schedule per method (:class:`TokenPlan`: the visual tokens each LLM layer sees, as stages
``[(first_layer, visual_tokens), ...]``) drives both the analytic count here and the prefill the
efficiency study runs (``analysis.efficiency.parts``): ``none`` is [(0, N)], CLIP-side methods [(0, K)], FastV
[(0, N), (K_layer, K)]; a method pruning at several LLM layers (SparseVLM: 576 tokens in layers
0-2, then fewer from layers 3, 7 and 16) is a longer list.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Protocol

import torch
from torch.utils.flop_counter import FlopCounterMode

from litelvlm.errors import LiteLVLMError
from litelvlm.methods import get_method

#: The LiteLVLM paper's LLM FLOPs ("TB") at 576 / 192 / 64 visual tokens.
PAPER_TFLOPS = {576: 4.66, 192: 2.11, 64: 1.27}


class LLMSizes(Protocol):
    """The decoder sizes the counts read: width d, SwiGLU width m, layers L, vocabulary V (a ``GlammArch`` has
    them; :class:`DecoderSizes` reads them from any family's decoder config), and optionally the key/value
    width ``llm_kv_hidden`` (:func:`kv_width`)."""

    llm_hidden: int
    llm_intermediate: int
    llm_layers: int
    vocab_size: int


@dataclass(frozen=True)
class DecoderSizes:
    """:class:`LLMSizes` of a family's decoder, read from its transformers config (Llama, Qwen2: any decoder with
    ``hidden_size``, ``intermediate_size``, ``num_hidden_layers``, ``vocab_size``; ``num_key_value_heads`` and
    ``head_dim`` where it has them). ``llm_kv_hidden`` None: the key/value width is ``llm_hidden``."""

    llm_hidden: int
    llm_intermediate: int
    llm_layers: int
    vocab_size: int
    llm_kv_hidden: int | None = None

    @classmethod
    def of(cls, config) -> DecoderSizes:
        """The sizes of the decoder configured by ``config`` (e.g. ``pipeline.language_model.config``)."""
        d, heads = int(config.hidden_size), int(config.num_attention_heads)
        head_dim = int(getattr(config, "head_dim", None) or d // heads)
        kv_heads = int(getattr(config, "num_key_value_heads", None) or heads)
        kv = kv_heads * head_dim
        if head_dim * heads != d:
            raise LiteLVLMError(f"the decoder's heads x head_dim ({heads} x {head_dim}) is not its width {d}")
        return cls(d, int(config.intermediate_size), int(config.num_hidden_layers), int(config.vocab_size),
                   None if kv == d else kv)


def kv_width(s: LLMSizes) -> int:
    """The width of the key and value projections: ``num_key_value_heads`` x head_dim (``d`` without GQA)."""
    return getattr(s, "llm_kv_hidden", None) or s.llm_hidden


def projection_macs(s: LLMSizes, n: int) -> int:
    """Multiply-accumulates of one layer's q, k, v and o projections on ``n`` tokens: ``2·n·d² + 2·n·d·k``
    (``4·n·d²`` without GQA; biases not counted, as FlopCounterMode counts none)."""
    d = s.llm_hidden
    return 2 * n * d * d + 2 * n * d * kv_width(s)


@dataclass(frozen=True)
class TokenPlan:
    """How many tokens each LLM layer sees: ``text_tokens`` text tokens at every layer, and the visual
    tokens of ``stages`` = ((first_layer, visual_tokens), ...): from ``first_layer`` on (up to the next
    stage's first layer) the layers see ``visual_tokens``. The first stage starts at layer 0."""

    text_tokens: int
    stages: tuple[tuple[int, int], ...]
    #: the LLM-side method that realises a multi-stage plan, and its budget ("" / 0: none needed)
    method: str = ""
    budget: int = 0

    def __post_init__(self) -> None:
        firsts = [first for first, _ in self.stages]
        if not firsts or firsts[0] != 0 or any(b <= a for a, b in zip(firsts, firsts[1:])):
            raise LiteLVLMError(f"token stages must start at layer 0 with increasing layers; got {self.stages}")

    @classmethod
    def uniform(cls, n: int) -> TokenPlan:
        """Every layer sees ``n`` tokens (counted as text: the count does not tell them apart)."""
        return cls(n, ((0, 0),))

    @property
    def n_before(self) -> int:
        """Tokens entering the LLM (the first layers)."""
        return self.text_tokens + self.stages[0][1]

    @property
    def n_tokens(self) -> int:
        """Tokens at the LLM output (what the LM head and the final hidden states see)."""
        return self.text_tokens + self.stages[-1][1]

    @property
    def prune_layer(self) -> int:
        """The first layer that sees fewer tokens than the input (0: pruned before the LLM, or not at all)."""
        return self.stages[1][0] if len(self.stages) > 1 else 0

    def layers(self, num_layers: int) -> list[tuple[int, int]]:
        """[(count of layers, tokens)] per stage, for an LLM of ``num_layers`` layers."""
        if self.stages[-1][0] >= num_layers:
            raise LiteLVLMError(f"token stages {self.stages} need more than {num_layers} LLM layers")
        ends = [first for first, _ in self.stages[1:]] + [num_layers]
        return [(end - first, self.text_tokens + visual) for (first, visual), end in zip(self.stages, ends)]




def schedule_plan(method: str, budget: int, num_visual: int, num_layers: int, text_tokens: int,
                  fastv_layer: int = 2, spec=None) -> TokenPlan:
    """The token schedule of ``method`` at visual budget ``budget`` (``analysis.efficiency.flops.token_plan`` for a
    family's preset) for any family: ``num_visual`` visual tokens unpruned, ``num_layers`` decoder layers,
    ``text_tokens`` text tokens around them; ``spec``: the method as the family runs it (None: as registered)."""
    spec = get_method(method) if spec is None else spec
    budget = num_visual if spec.baseline else budget
    options = spec.options_from(SimpleNamespace(fastv_layer=fastv_layer))
    stages = tuple(spec.schedule(budget, num_visual, num_layers, **options))
    runs = spec.stage != "clip" and not spec.baseline
    return TokenPlan(text_tokens, stages, method if runs else "", budget if runs else 0)


def llm_flops_exact(s: LLMSizes, plan: TokenPlan, lm_head: bool = True) -> int:
    """Exact FLOPs of a Llama/SwiGLU prefill with the token schedule ``plan`` (see the module docstring)."""
    d, m, V = s.llm_hidden, s.llm_intermediate, s.vocab_size
    total = sum(2 * c * (projection_macs(s, n) + 2 * n * n * d + 3 * n * d * m) for c, n in plan.layers(s.llm_layers))
    return total + (2 * plan.n_tokens * d * V if lm_head else 0)


def llm_macs_fastv_convention(s: LLMSizes, plan: TokenPlan) -> int:
    """The FastV paper's count: multiply-accumulates, two-matrix FFN, no LM head."""
    d, m = s.llm_hidden, s.llm_intermediate
    return sum(c * (projection_macs(s, n) + 2 * n * n * d + 2 * n * d * m) for c, n in plan.layers(s.llm_layers))


def llm_macs_swiglu(s: LLMSizes, plan: TokenPlan) -> int:
    """Multiply-accumulates with the three-matrix SwiGLU FFN, no LM head (the LiteLVLM paper's count)."""
    return llm_flops_exact(s, plan, lm_head=False) // 2


def count_flops(fn: Callable[[], object]) -> tuple[int, dict[str, int]]:
    """Run ``fn`` under FlopCounterMode: (total FLOPs, FLOPs per aten op)."""
    fc = FlopCounterMode(display=False)
    with torch.no_grad(), fc:
        fn()
    return int(fc.get_total_flops()), {str(k): int(v) for k, v in fc.get_flop_counts().get("Global", {}).items()}


def fit_paper_text_tokens(s: LLMSizes, paper: dict[int, float] | None = None, visual: int = 576) -> dict:
    """For each convention, the sequence length n (and text tokens n - K) that reproduces each of the
    paper's FLOPs figures, plus the single best text-token count (least squares) and its errors."""
    from scipy.optimize import brentq, minimize_scalar

    paper = paper or PAPER_TFLOPS
    convs: dict[str, Callable[[int], float]] = {
        "exact": lambda n: llm_flops_exact(s, TokenPlan.uniform(n)),
        "exact_no_head": lambda n: llm_flops_exact(s, TokenPlan.uniform(n), lm_head=False),
        "fastv": lambda n: llm_macs_fastv_convention(s, TokenPlan.uniform(n)),
        "mac_swiglu": lambda n: llm_macs_swiglu(s, TokenPlan.uniform(n)),
    }

    def cont(f):  # the counts are polynomials in n: evaluate on reals via exact integer fit
        a0, a1, a2 = f(0), f(1), f(2)
        c2 = (a2 - 2 * a1 + a0) / 2
        c1 = a1 - a0 - c2
        return lambda x: c2 * x * x + c1 * x + a0

    out = {}
    for name, f in convs.items():
        g = cont(f)
        ns = {k: brentq(lambda x, t=t, g=g: g(x) - t * 1e12, 1e-6, 1e6) for k, t in paper.items()}
        text = {k: ns[k] - k for k in paper}

        def sse(t, g=g):
            return sum((g(k + t) / 1e12 - v) ** 2 for k, v in paper.items())

        best = minimize_scalar(sse, bounds=(0, 2000), method="bounded").x
        out[name] = {"n": {int(k): round(v, 1) for k, v in ns.items()},
                     "text_tokens": {int(k): round(v, 1) for k, v in text.items()},
                     "best_text_tokens": round(float(best), 1),
                     "tflops_at_best": {int(k): round(g(k + best) / 1e12, 3) for k in paper}}
    return out
