"""The paper's efficiency quantities (``analysis.common.measures.paper_efficiency``) against transcriptions of
the authors' compiled loops, and the paper's FLOPs and activation figures reproduced from the formulas.

Source: sejong-rcv/LiteLVLM @5896153, compiled CPython 3.10 files (no source released), read with
``marshal`` + ``dis``:
* ``model/llava/model/language_model/__pycache__/modeling_llama_fastv.cpython-310.pyc``, code object
  ``LlamaModel.forward`` (first line 621): L699-707 (per-layer counters at the top of each iteration),
  L738-780 (in-place FastV pruning at ``idx == fast_v_agg_layer``, after the count), L850-863 (prints);
  ``LlamaModel.__init__`` L576-581 (``fast_v_sys_length=36``, ``fast_v_image_token_length=576``,
  ``fast_v_attention_rank=192``, ``fast_v_agg_layer=2``, ``fast_v_inplace=True``).
* ``modelling_sparse_llama.cpython-310.pyc``, ``LlamaDynamicvitModel.forward`` (first line 101):
  L217-222 (the same FLOPs at the top of each iteration), L224-326 (pruning after the layer at
  ``pruning_loc``), L312 (``v_token_num = kept + cluster_num``).
"""

from __future__ import annotations

import pytest

from analysis.common.measures.paper_efficiency import (
    counted_layer_tokens,
    paper_activation_bytes,
    paper_flops,
)
from analysis.efficiency.arch import get_arch
from analysis.efficiency.flops import token_plan
from litelvlm.glamm.cost import OFFICIAL_PROMPT_TOKENS as OFFICIAL_TEXT_TOKENS  # the official prompt's text
from litelvlm.methods.sparsevlm import token_schedule


def _fastv_port_counters(seq_len, num_layers, d, m, agg_layer, image_len, attention_rank, element_size=2):
    """``modeling_llama_fastv`` ``LlamaModel.forward`` counters for one prefill (transcribed)."""
    flops, activation = 0, 0
    n = seq_len
    for idx in range(num_layers):  # L699
        flops += 4 * n * d ** 2 + 2 * n ** 2 * d + 3 * n * d * m  # L700-703
        activation += n * (2 * d + m) * element_size  # L706-707
        # L743-775: keep_indexs = sys + top-rank image + the rest; hidden_states filtered
        if idx == agg_layer:
            n = n - image_len + attention_rank
    return flops, activation


def _sparse_port_flops(seq_len, num_layers, d, m, visual_after):
    """``modelling_sparse_llama`` ``LlamaDynamicvitModel.forward`` FLOPs (transcribed): ``visual_after[l]``
    is the visual count after layer l's pruning (kept + recycled clusters, L312), for l in pruning_loc."""
    flops, n = 0, seq_len
    visual = None
    for layer_idx in range(num_layers):  # L217
        flops += 4 * n * d ** 2 + 2 * n ** 2 * d + 3 * n * d * m  # L219-222
        if layer_idx in visual_after:  # L224-326: the layer ran on n; its outputs are pruned
            v_new = visual_after[layer_idx]
            n = n - (visual if visual is not None else 576) + v_new
            visual = v_new
    return flops


@pytest.fixture(scope="module")
def arch():
    return get_arch("glamm-7b", OFFICIAL_TEXT_TOKENS)


def test_fastv_counts_its_pruning_layer_at_full_length(arch):
    s = arch.glamm
    seq = OFFICIAL_TEXT_TOKENS + 576
    for budget in range(1, 577):
        plan = token_plan(arch, "fastv", budget, 2)
        ref = _fastv_port_counters(seq, s.llm_layers, s.llm_hidden, s.llm_intermediate, 2, 576, budget)
        assert (paper_flops(s, plan), paper_activation_bytes(s, plan)) == ref, budget
    assert counted_layer_tokens(s, token_plan(arch, "fastv", 192, 2))[:4] == [seq, seq, seq,
                                                                              OFFICIAL_TEXT_TOKENS + 192]


@pytest.mark.parametrize("budget", [192, 128, 96, 64, 32, 300, 7])
def test_sparsevlm_counts_the_schedule_as_run(arch, budget):
    s = arch.glamm
    per_layer = token_schedule(budget, 576, s.llm_layers)
    visual_after = {i - 1: v for i, v in enumerate(per_layer) if i and v != per_layer[i - 1]}
    ref = _sparse_port_flops(OFFICIAL_TEXT_TOKENS + 576, s.llm_layers, s.llm_hidden, s.llm_intermediate,
                             visual_after)
    assert paper_flops(s, token_plan(arch, "sparsevlm", budget)) == ref


@pytest.mark.parametrize("method", ["none", "litelvlm", "vispruner", "divprune", "dart"])
def test_other_methods_are_counted_as_they_run(arch, method):
    s = arch.glamm
    for budget in (576, 192, 64, 1):
        plan = token_plan(arch, method, budget, 2)
        run = [n for c, n in plan.layers(s.llm_layers) for _ in range(c)]
        assert counted_layer_tokens(s, plan) == run


def _tokens_reproducing(value, per_token, decimals=2):
    """The token counts n whose ``per_token(n)`` rounds to ``value``."""
    return [n for n in range(1, 2000) if round(per_token(n), decimals) == value]


def test_paper_figures_from_the_formulas(arch):
    """At the official prompt (129 text tokens, 36 before the image): FLOPs 4.70 / 2.11 / 1.26 TFLOPs
    against the paper's 4.66 / 2.11 / 1.27, activation 0.81 / 0.37 / 0.22 GB against 0.81 / 0.35 / 0.21.
    The paper's activation figures are the formula at 704-712 / 302-310 / 180-187 tokens (128-136 /
    110-118 / 116-123 text tokens beside 576 / 192 / 64 visual ones): no single prompt length gives all
    three."""
    s = arch.glamm
    got = {}
    for method, budget in (("none", 576), ("litelvlm", 192), ("litelvlm", 64)):
        plan = token_plan(arch, method, budget)
        got[budget] = (round(paper_flops(s, plan) / 1e12, 2),
                       round(paper_activation_bytes(s, plan) / 2 ** 30, 2))
    assert got == {576: (4.70, 0.81), 192: (2.11, 0.37), 64: (1.26, 0.22)}
    per_layer_bytes = s.llm_layers * (2 * s.llm_hidden + s.llm_intermediate) * 2
    act = {v: _tokens_reproducing(v, lambda n: n * per_layer_bytes / 2 ** 30) for v in (0.81, 0.35, 0.21)}
    assert (min(act[0.81]), max(act[0.81])) == (704, 712)
    assert (min(act[0.35]), max(act[0.35])) == (302, 310)
    assert (min(act[0.21]), max(act[0.21])) == (180, 187)
    d, m = s.llm_hidden, s.llm_intermediate
    fl = {
        v:
        _tokens_reproducing(v,
                            lambda n: s.llm_layers * (4 * n * d * d + 2 * n * n * d + 3 * n * d * m) / 1e12)
          for v in (4.66, 2.11, 1.27)}
    # the paper's FLOPs are the formula at 700 / 321-322 / 194-195 tokens: 124 / 129-130 / 130-131 text tokens
    assert fl == {4.66: [700], 2.11: [321, 322], 1.27: [194, 195]}


def test_fastv_at_the_paper_budgets(arch):
    """FastV (K=2) at 192 / 64 under the official loop: the paper prints no FastV figure to compare with."""
    s = arch.glamm
    vals = {b: (round(paper_flops(s, token_plan(arch, "fastv", b, 2)) / 1e12, 2),
                round(paper_activation_bytes(s, token_plan(arch, "fastv", b, 2)) / 2 ** 30, 2))
            for b in (192, 64)}
    assert vals == {192: (2.35, 0.41), 64: (1.58, 0.28)}


def test_validate_and_efficiency_report_the_paper_definitions():
    """``validate``'s ratios and ``efficiency``'s rows carry the paper's quantities, named as the paper's."""
    import torch

    from analysis.common.measures.paper_efficiency import paper_row
    from analysis.efficiency.count import flops_rows
    from analysis.validate.report import paper_definitions

    big = get_arch("glamm-7b", OFFICIAL_TEXT_TOKENS)
    none = paper_definitions(big.glamm, 576, OFFICIAL_TEXT_TOKENS, "none", 576)
    lite = paper_definitions(big.glamm, 576, OFFICIAL_TEXT_TOKENS, "litelvlm", 192)
    assert round(none[1] / lite[1], 2) == round(705 / 321, 2)  # a token-count ratio, as the paper's "2.3x"
    tiny = get_arch("tiny")
    df = flops_rows(tiny, [("none", tiny.num_patches), ("fastv", 8), ("litelvlm", 8)], ["sdpa"],
                    torch.float32, 2)
    for r in df.itertuples():
        expected = paper_row(tiny.glamm, token_plan(tiny, r.method, r.budget, 2), element_size=4)  # float32
        assert (r.paper_tflops, r.paper_activation_gib) == (expected["paper_tflops"],
                                                            expected["paper_activation_gib"])
