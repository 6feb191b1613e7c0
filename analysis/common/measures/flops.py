"""LLM FLOPs per method and budget: the analytic counts (the sizes and token plans:
:mod:`litelvlm.cost.tokens`).

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
efficiency study runs (``litelvlm.cost.parts``): ``none`` is [(0, N)], CLIP-side methods [(0, K)], FastV
[(0, N), (K_layer, K)]; a method pruning at several LLM layers (SparseVLM: 576 tokens in layers
0-2, then fewer from layers 3, 7 and 16) is a longer list.
"""

from __future__ import annotations

from collections.abc import Callable

from scipy.optimize import brentq, minimize_scalar

from litelvlm.cost.tokens import (
    DecoderSizes,
    LLMSizes,
    TokenPlan,
    count_flops,
    kv_width,
    projection_macs,
    schedule_plan,
)

#: The LiteLVLM paper's LLM FLOPs ("TB") at 576 / 192 / 64 visual tokens.
PAPER_TFLOPS = {576: 4.66, 192: 2.11, 64: 1.27}

__all__ = ["PAPER_TFLOPS", "DecoderSizes", "LLMSizes", "TokenPlan", "count_flops", "fit_paper_text_tokens",
           "kv_width", "llm_flops_exact", "llm_macs_fastv_convention", "llm_macs_swiglu", "projection_macs",
           "schedule_plan"]


def llm_flops_exact(s: LLMSizes, plan: TokenPlan, lm_head: bool = True) -> int:
    """Exact FLOPs of a Llama/SwiGLU prefill with the token schedule ``plan`` (see the module docstring)."""
    d, m, V = s.llm_hidden, s.llm_intermediate, s.vocab_size
    total = sum(2 * c * (projection_macs(s, n) + 2 * n * n * d + 3 * n * d * m) for c,
                n in plan.layers(s.llm_layers))
    return total + (2 * plan.n_tokens * d * V if lm_head else 0)


def llm_macs_fastv_convention(s: LLMSizes, plan: TokenPlan) -> int:
    """The FastV paper's count: multiply-accumulates, two-matrix FFN, no LM head."""
    d, m = s.llm_hidden, s.llm_intermediate
    return sum(c * (projection_macs(s, n) + 2 * n * n * d + 2 * n * d * m) for c,
               n in plan.layers(s.llm_layers))


def llm_macs_swiglu(s: LLMSizes, plan: TokenPlan) -> int:
    """Multiply-accumulates with the three-matrix SwiGLU FFN, no LM head (the LiteLVLM paper's count)."""
    return llm_flops_exact(s, plan, lm_head=False) // 2


def fit_paper_text_tokens(s: LLMSizes, paper: dict[int, float] | None = None, visual: int = 576) -> dict:
    """For each convention, the sequence length n (and text tokens n - K) that reproduces each of the
    paper's FLOPs figures, plus the single best text-token count (least squares) and its errors."""
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
