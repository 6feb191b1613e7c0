"""The paper's efficiency quantities, as the authors' compiled GLaMM code computes them.

The official repository (sejong-rcv/LiteLVLM @5896153) ships no source of the code that printed the
paper's efficiency table, only its compiled CPython 3.10 files:
``model/llava/model/language_model/__pycache__/modeling_llama_fastv.cpython-310.pyc`` and
``modelling_sparse_llama.cpython-310.pyc``. Read with ``marshal``/``dis`` (code objects keep their
source lines), ``LlamaModel.forward`` of the FastV port (first line 621) does, for a prefill:

* L693-697: ``torch.cuda.Event``s, synchronise, record the start (only when the sequence is longer
  than 1); L699 ``for idx, decoder_layer in enumerate(self.layers)``;
* L700-703 at the TOP of each iteration: ``n, d = hidden_states.shape[1:]``,
  ``m = layers[idx].mlp.up_proj.out_features``, ``FLOPs += 4*n*d**2 + 2*n**2*d + 3*n*d*m``;
* L706-707: ``activation_memory += n * (2*d + m) * hidden_states.element_size()``;
* L738-780: FastV's in-place pruning at ``idx == fast_v_agg_layer`` (2), AFTER the count: the layer
  where FastV prunes is counted at the full n, though it runs on the kept tokens;
* L850-863: record the end, synchronise, ``total_cuda_time += elapsed_time`` (ms, cumulative over
  forwards), print "Prefill Time", ``FLOPs / num_forward * 1e-12`` as "TFLOPs" and
  ``activation_memory / 2**30`` as "Storing Activation: … GB" (cumulative: after one forward, that
  forward's figure). No embedding, LM head or SAM is counted or timed.

``LlamaDynamicvitModel.forward`` of the SparseVLM port (first line 101) counts the same FLOPs at the
top of each iteration (L217-222) and prunes at ``layer_idx in pruning_loc`` after that layer has run
(L224-326), so its count is the schedule as run; it times the layer loop the same way (L212-215,
L366-370) and counts no activation.

So, per method here: ``fastv`` follows the FastV port (the pruning layer at the full n); ``sparsevlm``
and every method the compiled code does not cover (``none``, the CLIP-side methods, ``divprune``,
``dart``) are counted as they run, layer by layer: this project's choice for DART, which prunes
like FastV but whose GLaMM port the authors did not ship.
"""

from __future__ import annotations

from analysis.common.measures.flops import LLMSizes, TokenPlan, projection_macs
from litelvlm.registry.families import cards

#: Bytes of the official activations (bfloat16 ``hidden_states.element_size()``).
OFFICIAL_ELEMENT_SIZE = 2
#: Methods whose count follows a compiled official loop (the others are counted as they run), and how that
#: loop counts the layer where the method prunes: ``before`` (the top of the iteration, at the full n: the
#: FastV port) or ``as run`` (after that layer has run: the SparseVLM port).
OFFICIAL_LOOPS = {"fastv": "before", "sparsevlm": "as run"}
OFFICIAL_LOOP_METHODS = tuple(OFFICIAL_LOOPS)
#: Text tokens of the official RefCOCO prompt (3 sentences, median over RefCOCO val): 36 before the image.
OFFICIAL_TEXT_TOKENS = 129


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
    "flops_tb": {576: 4.66, 192: 2.11, 64: 1.27},
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
