"""LLM FLOPs per method and budget: the analytic counts (the sizes and token plans:
:mod:`litelvlm.cost.tokens`).

Details: docs/efficiency.md (``analysis.common.measures.flops``).
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
    """Exact FLOPs of a Llama/SwiGLU prefill with the token schedule ``plan`` (see docs/efficiency.md)."""
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
