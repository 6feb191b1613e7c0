"""FLOPs of the GLaMM pipeline per method and budget: the analytic count and FlopCounterMode's.

Conventions (n tokens, Llama with d, L, m, V):

* ``exact``: 2·L·(4·n·d² + 2·n²·d + 3·n·d·m) + 2·n·d·V floating-point operations (a multiply-add
  is 2; q/k/v/o projections, the two attention matmuls over the full n×n score matrix, SwiGLU's three
  matrices, the LM head on every position). FlopCounterMode counts exactly this.
* ``fastv``: the FastV paper's L·(4·n·d² + 2·n²·d + 2·n·d·m): multiply-accumulates, a two-matrix FFN,
  no LM head.
* ``mac_swiglu``: L·(4·n·d² + 2·n²·d + 3·n·d·m) multiply-accumulates (no LM head), i.e. half the
  exact count without the head. The LiteLVLM paper's 4.66 / 2.11 / 1.27 "TB" follow this one.

With FastV, layers ``0..K-1`` see n tokens and layers ``K..L-1`` the pruned n'.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch.utils.flop_counter import FlopCounterMode

from litelvlm.lvlm.config import GlammArch

from .arch import EffArch

#: Methods whose pruning happens before the LLM (the LLM simply gets K visual tokens).
PAPER_TFLOPS = {576: 4.66, 192: 2.11, 64: 1.27}


@dataclass(frozen=True)
class TokenPlan:
    """How many tokens each LLM layer sees: ``n_before`` for layers < ``prune_layer``, then ``n_after``."""

    n_before: int
    n_after: int
    prune_layer: int  # 0 when pruning happens before the LLM (or there is none)

    @property
    def n_tokens(self) -> int:
        """Tokens at the LLM output (what the LM head and the final hidden states see)."""
        return self.n_after


def token_plan(arch: EffArch, method: str, budget: int, fastv_layer: int = 2) -> TokenPlan:
    """The LLM's token counts for ``method`` at visual budget ``budget``."""
    n_full = arch.n_tokens(arch.num_patches)
    if method == "none":
        return TokenPlan(n_full, n_full, 0)
    if method == "fastv":
        return TokenPlan(n_full, arch.n_tokens(budget), fastv_layer)
    return TokenPlan(arch.n_tokens(budget), arch.n_tokens(budget), 0)


def _layers(plan: TokenPlan, layers: int) -> list[tuple[int, int]]:
    """[(count of layers, tokens)]."""
    k = plan.prune_layer
    return [(k, plan.n_before), (layers - k, plan.n_after)] if k else [(layers, plan.n_after)]


def llm_flops_exact(s: GlammArch, plan: TokenPlan, lm_head: bool = True) -> int:
    """Exact FLOPs of a Llama/SwiGLU prefill (see the module docstring), FastV-aware."""
    d, m, V = s.llm_hidden, s.llm_intermediate, s.vocab_size
    total = sum(2 * c * (4 * n * d * d + 2 * n * n * d + 3 * n * d * m) for c, n in _layers(plan, s.llm_layers))
    return total + (2 * plan.n_after * d * V if lm_head else 0)


def llm_macs_fastv_convention(s: GlammArch, plan: TokenPlan) -> int:
    """The FastV paper's count: multiply-accumulates, two-matrix FFN, no LM head."""
    d, m = s.llm_hidden, s.llm_intermediate
    return sum(c * (4 * n * d * d + 2 * n * n * d + 2 * n * d * m) for c, n in _layers(plan, s.llm_layers))


def llm_macs_swiglu(s: GlammArch, plan: TokenPlan) -> int:
    """Multiply-accumulates with the three-matrix SwiGLU FFN, no LM head (the LiteLVLM paper's count)."""
    return llm_flops_exact(s, plan, lm_head=False) // 2


def count_flops(fn: Callable[[], object]) -> tuple[int, dict[str, int]]:
    """Run ``fn`` under FlopCounterMode: (total FLOPs, FLOPs per aten op)."""
    fc = FlopCounterMode(display=False)
    with torch.no_grad(), fc:
        fn()
    return int(fc.get_total_flops()), {str(k): int(v) for k, v in fc.get_flop_counts().get("Global", {}).items()}


def run_llm(model: torch.nn.Module, arch: EffArch, plan: TokenPlan, inputs_embeds: torch.Tensor,
            fastv_layer: int = 2):
    """One GLaMM-style prefill (KV cache, all hidden states, logits at every position), FastV when planned."""
    from .fastv import fastv_pruning

    kwargs = dict(inputs_embeds=inputs_embeds, use_cache=True, output_hidden_states=True)
    if plan.prune_layer:
        with fastv_pruning(model, vis_start=arch.prefix_tokens, num_visual=arch.num_patches,
                           keep=plan.n_after - arch.text_tokens, layer=plan.prune_layer):
            return model(**kwargs)
    return model(**kwargs)


def llm_inputs(arch: EffArch, plan: TokenPlan, device="meta", dtype=torch.float32, seed: int = 0) -> torch.Tensor:
    """(1, n_before, d) input embeddings (random values off ``meta``)."""
    shape = (1, plan.n_before, arch.glamm.llm_hidden)
    if str(device) == "meta":
        return torch.empty(shape, device="meta", dtype=dtype)
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(shape, generator=g) * 0.02).to(device, dtype)


def measure_llm_flops(model: torch.nn.Module, arch: EffArch, plan: TokenPlan) -> tuple[int, dict[str, int]]:
    """FlopCounterMode's count of one LLM prefill (``model`` may live on ``meta``)."""
    x = llm_inputs(arch, plan, device=model.device, dtype=model.dtype)
    return count_flops(lambda: run_llm(model, arch, plan, x))


def fit_paper_text_tokens(s: GlammArch, paper: dict[int, float] | None = None, visual: int = 576) -> dict:
    """For each convention, the sequence length n (and text tokens n - K) that reproduces each of the
    paper's FLOPs figures, plus the single best text-token count (least squares) and its errors."""
    from scipy.optimize import brentq, minimize_scalar

    paper = paper or PAPER_TFLOPS
    convs: dict[str, Callable[[int], float]] = {
        "exact": lambda n: llm_flops_exact(s, TokenPlan(n, n, 0)),
        "exact_no_head": lambda n: llm_flops_exact(s, TokenPlan(n, n, 0), lm_head=False),
        "fastv": lambda n: llm_macs_fastv_convention(s, TokenPlan(n, n, 0)),
        "mac_swiglu": lambda n: llm_macs_swiglu(s, TokenPlan(n, n, 0)),
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
