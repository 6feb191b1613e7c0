"""The paper's efficiency quantities, as the authors' compiled GLaMM code computes them.

Source: the compiled files of sejong-rcv/LiteLVLM @ 5896153; the methods that code does not cover are counted
as they run, layer by layer (this project's choice for DART).

Details: docs/efficiency.md (``analysis.common.measures.paper_efficiency``).
"""

from __future__ import annotations

from analysis.common.measures.flops import PAPER_TFLOPS, LLMSizes, TokenPlan, projection_macs
from litelvlm.registry.families import cards

#: Bytes of the official activations (bfloat16 ``hidden_states.element_size()``).
OFFICIAL_ELEMENT_SIZE = 2
#: Methods whose count follows a compiled official loop (the others are counted as they run), and how that
#: loop counts the layer where the method prunes: ``before`` (the top of the iteration, at the full n: the
#: FastV port) or ``as run`` (after that layer has run: the SparseVLM port).
OFFICIAL_LOOPS = {"fastv": "before", "sparsevlm": "as run"}
OFFICIAL_LOOP_METHODS = tuple(OFFICIAL_LOOPS)


def counted_layer_tokens(s: LLMSizes, plan: TokenPlan) -> list[int]:
    """Tokens the official loop counts for each decoder layer (``n`` at the top of its iteration)."""
    run = [n for count, n in plan.layers(s.llm_layers) for _ in range(count)]
    # pruned inside iteration K, after the count
    if plan.prune_layer and OFFICIAL_LOOPS.get(plan.method) == "before":
        k = plan.prune_layer
        run[k] = run[k - 1]
    return run


def paper_flops(s: LLMSizes, plan: TokenPlan) -> int:
    """The paper's LLM FLOPs: sum over decoder layers of 4nd^2 + 2n^2d + 3ndm (no LM head). With grouped-query
    attention (Qwen2.5-VL) the 4nd^2 of the q/k/v/o projections is 2nd^2 + 2ndk, k the key/value width: this
    project's generalisation (the compiled code, written for Llama-2's multi-head attention, has 4nd^2)."""
    d, m = s.llm_hidden, s.llm_intermediate
    return sum(projection_macs(s, n) + 2 * n ** 2 * d + 3 * n * d * m for n in counted_layer_tokens(s, plan))


def paper_activation_bytes(s: LLMSizes, plan: TokenPlan, element_size: int = OFFICIAL_ELEMENT_SIZE) -> int:
    """The paper's "Storing Activation": sum over decoder layers of n (2d + m) * element_size bytes
    (analytic, not a measured peak)."""
    d, m = s.llm_hidden, s.llm_intermediate
    return sum(n * (2 * d + m) * element_size for n in counted_layer_tokens(s, plan))


def paper_row(s: LLMSizes, plan: TokenPlan, element_size: int = OFFICIAL_ELEMENT_SIZE) -> dict:
    """The paper's quantities of one token schedule, named as the paper's (``element_size``: bytes of the
    activations' dtype, ``hidden_states.element_size()`` in the official code)."""
    return {"paper_tflops": paper_flops(s, plan) / 1e12,
            "paper_activation_gib": paper_activation_bytes(s, plan, element_size) / 2 ** 30}


#: The paper's definitions, for a run's ``config.json`` and reports.
DEFINITIONS = {
    "paper_tflops": "sum over decoder layers of 4nd^2 + 2n^2d + 3ndm, n = tokens entering the layer-loop "
                    "iteration (FastV's pruning layer at the full n), no LM head, x 1e-12 "
                    "(modeling_llama_fastv L699-703); with grouped-query attention 4nd^2 is 2nd^2 + 2ndk, k "
                    "the key/value width (this project's generalisation)",
    "paper_activation_gib": "sum over decoder layers of n(2d + m) x element size of the dtype, / 2^30 "
                            "(modeling_llama_fastv L706-707, L862-863): analytic, not a measured peak",
    "paper_prefill_ms": "time of the decoder-layer loop only (CUDA events on a GPU, perf_counter on a CPU; "
                        "modeling_llama_fastv L693-699, L850-855)",
    "cuda_time_reading_ms": "this project's reading of the paper's CUDA time (defined in no released file): "
                            "the whole pipeline (CLIP, selection, LLM prefill, SAM), timed the same way",
}


#: The LiteLVLM paper's efficiency table (GLaMM-7B; baseline = 576 visual tokens, LiteLVLM at 192 / 64).
PAPER = {
    "prefill_ms": {576: 166.25, 192: 74.88, 64: 54.02},
    "cuda_ms": {576: 340.89, 192: 265.83, 64: 237.35},
    "activations_gb": {576: 0.81, 192: 0.35, 64: 0.21},
    "flops_tb": PAPER_TFLOPS,
}


#: The paper's efficiency numbers by method (a method absent here has none: the paper's own FastV and
#: VisPruner numbers could not be read from an available text of arXiv 2605.13178, so only LiteLVLM's are
#: known).
PAPER_BY_METHOD = {"litelvlm": PAPER}
#: The paper's setting of a method's run, by method: FastV's in the authors' compiled GLaMM port
#: (``modeling_llama_fastv`` ``LlamaModel.__init__`` L576-581): prune at layer 2, keep
#: ``fast_v_attention_rank`` (192 by default) of 576 visual tokens.
PAPER_SETTINGS = {"fastv": "K=2, kept = attention rank (192 of 576 by default; compiled "
                           f"{next(c.display_name for c in cards() if c.paper_preset)} port)"}


def paper_arch() -> str:
    """The architecture of the paper's efficiency table (its figures sit beside rows of it only): the preset
    its family's card names as the paper's (``paper_preset``)."""
    return next(c.paper_preset for c in cards() if c.paper_preset)


def paper_ratio(metric: str, budget: int, numbers: dict = PAPER) -> float:
    """Baseline / pruned for one of the paper's metrics (NaN where the paper has no number); ``numbers``: a
    method's (:data:`PAPER_BY_METHOD`)."""
    vals = numbers[metric]
    return vals[576] / vals[budget] if budget in vals else float("nan")
