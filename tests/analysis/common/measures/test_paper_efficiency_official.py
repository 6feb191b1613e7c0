"""The paper's efficiency counters, read from the authors' compiled code, against
``analysis.common.measures.paper_efficiency``.

Source: sejong-rcv/LiteLVLM @5896153 ships the code that printed the paper's efficiency table only compiled
(CPython 3.10, no .py source), read here with ``marshal`` + ``dis`` (code objects keep source lines):

* ``model/llava/model/language_model/__pycache__/modeling_llama_fastv.cpython-310.pyc``, code object
  ``LlamaModel.forward`` (first line 621): L693-697 (``if hidden_states.shape[1] != 1``: CUDA events,
  synchronise, record the start), L699 (``for idx, decoder_layer in enumerate(self.layers)``), L700-703
  (``n = hidden_states.shape[1]; d = hidden_states.shape[2]; m = self.layers[idx].mlp.up_proj.out_features;
  self.FLOPs += 4*n*d**2 + 2*n**2*d + 3*n*d*m``), L706-707 (``b_m = hidden_states.element_size();
  self.activation_memory += n*(2*d+m)*b_m``), L738-780 (in-place FastV at ``idx == AGG_LAYER``: L775
  ``hidden_states = hidden_states[:, keep_indexs, :]``, after the count), L833-842 (the layer runs),
  L850-863 (end event, ``total_cuda_time``, ``FLOPs / num_forward * 1e-12``, ``activation_memory /
  1073741824``), L865 (the final norm, after the timer).
* ``modelling_sparse_llama.cpython-310.pyc``, ``LlamaDynamicvitModel.forward`` (first line 101): L217 (the
  layer loop), L219-222 (the same FLOPs, ``self.all_FLOPs``), L224 (``layer_idx in self.pruning_loc``),
  L229-237 (the layer runs), L317 (``batch_index_select`` of its outputs: pruned after the layer ran).

The bytecode tests read that repository from ``../shared/official/LiteLVLM.git`` (the ``official`` fixture;
they skip only when ``../shared`` is absent) and unmarshal the .pyc files with a CPython 3.10 (``python3.10``
on the PATH, a pyenv 3.10, or ``LITELVLM_PYTHON310``; they skip, saying so, without one); the transcription
tests always run.
"""

from __future__ import annotations

import glob
import json
import os
import shutil
import subprocess
import sys

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

PYC = "model/llava/model/language_model/__pycache__/"
CLIP_SIDE = ["litelvlm", "litelvlm-ctx", "clip_topsim", "random", "vispruner", "visionzip", "prumerge",
             "prumerge+", "tome", "divprune"]


# --- transcriptions of the compiled loops -------------------------------------------------------------------

def fastv_port(seq_len, num_layers, d, m, agg_layer, image_len, rank, element_size=2):
    """``modeling_llama_fastv`` ``LlamaModel.forward``: (FLOPs, activation bytes, n counted per layer)."""
    flops, activation, counted = 0, 0, []
    n = seq_len
    for idx in range(num_layers):  # L699
        counted.append(n)  # L700
        flops += 4 * n * d ** 2 + 2 * n ** 2 * d + 3 * n * d * m  # L703
        activation += n * (2 * d + m) * element_size  # L706-707
        # L743-775: keep sys + top-``rank`` image + the rest, before the layer runs (L833)
        if idx == agg_layer:
            n = n - image_len + rank
    return flops, activation, counted


def sparse_port(seq_len, num_layers, d, m, visual_after, image_len=576):
    """``modelling_sparse_llama`` ``LlamaDynamicvitModel.forward``: (FLOPs, n counted per layer);
    ``visual_after[l]``: visual tokens after layer l's pruning (kept + recycled clusters, L312)."""
    flops, n, visual, counted = 0, seq_len, image_len, []
    for layer_idx in range(num_layers):  # L217
        counted.append(n)  # L219
        flops += 4 * n * d ** 2 + 2 * n ** 2 * d + 3 * n * d * m  # L222
        if layer_idx in visual_after:  # L224-326: the layer ran on n, its outputs are pruned
            n, visual = n - visual + visual_after[layer_idx], visual_after[layer_idx]
    return flops, counted


def as_run(arch, plan):
    """Tokens each layer runs on (the convention for methods no compiled loop covers)."""
    return [n for count, n in plan.layers(arch.glamm.llm_layers) for _ in range(count)]


@pytest.mark.parametrize("arch_name", ["tiny", "glamm-7b"])
def test_fastv_every_budget_against_the_port(arch_name):
    """Every budget 1..N (tiny: 4 layers; glamm-7b: 32), K = 2 (the port's ``fast_v_agg_layer``)."""
    arch = get_arch(arch_name)
    s, big_n = arch.glamm, arch.num_patches
    seq = arch.text_tokens + big_n
    for budget in range(1, big_n + 1):
        plan = token_plan(arch, "fastv", budget, 2)
        flops, act, counted = fastv_port(seq, s.llm_layers, s.llm_hidden, s.llm_intermediate, 2, big_n,
                                         budget)
        assert counted_layer_tokens(s, plan) == counted, budget
        assert (paper_flops(s, plan), paper_activation_bytes(s, plan)) == (flops, act), budget


@pytest.mark.parametrize("arch_name", ["tiny", "glamm-7b"])
def test_sparsevlm_every_budget_against_the_port(arch_name):
    """SparseVLM's official schedule (``pruning_loc`` 2, 6, 15 on 32 layers, scaled on tiny) at every
    budget."""
    arch = get_arch(arch_name)
    s = arch.glamm
    for budget in range(1, arch.num_patches + 1):
        per_layer = token_schedule(budget, arch.num_patches, s.llm_layers)
        after = {i - 1: v for i, v in enumerate(per_layer) if i and v != per_layer[i - 1]}
        flops, counted = sparse_port(arch.text_tokens + arch.num_patches, s.llm_layers, s.llm_hidden,
                                     s.llm_intermediate, after, arch.num_patches)
        plan = token_plan(arch, "sparsevlm", budget)
        assert counted_layer_tokens(s, plan) == counted, budget
        assert paper_flops(s, plan) == flops, budget


@pytest.mark.parametrize("arch_name", ["tiny", "glamm-7b"])
def test_uncovered_methods_are_counted_as_they_run(arch_name):
    """``none``, the CLIP-side methods and DivPrune (K tokens from layer 0) and DART (N in layers 0-1, K
    after) are in no compiled loop: counted as they run, i.e. the FastV port's loop with no in-loop
    pruning."""
    arch = get_arch(arch_name)
    s = arch.glamm
    d, m, big_n, t = s.llm_hidden, s.llm_intermediate, arch.num_patches, arch.text_tokens
    none = token_plan(arch, "none", big_n)
    assert counted_layer_tokens(s, none) == [t + big_n] * s.llm_layers
    for budget in range(1, big_n + 1, 1 if arch_name == "tiny" else 7):
        for method in CLIP_SIDE:  # the port's loop on a sequence that enters with K visual tokens
            plan = token_plan(arch, method, budget, 2)
            flops, act, counted = fastv_port(t + budget, s.llm_layers, d, m, -1, big_n, budget)
            assert (counted_layer_tokens(s, plan), paper_flops(s, plan), paper_activation_bytes(s, plan)) \
                == (counted, flops, act), (method, budget)
        dart = token_plan(arch, "dart", budget)
        assert counted_layer_tokens(s, dart) == as_run(arch, dart) == [t + big_n] * 2 + [t + budget] * (
            s.llm_layers - 2)


def test_element_size_and_units():
    """``b_m = hidden_states.element_size()`` (L706): float32 doubles the bytes of bfloat16; GiB = 2**30
    (L862)."""
    arch = get_arch("glamm-7b", OFFICIAL_TEXT_TOKENS)
    plan = token_plan(arch, "litelvlm", 192)
    assert paper_activation_bytes(arch.glamm, plan, 4) == 2 * paper_activation_bytes(arch.glamm, plan)
    assert paper_activation_bytes(arch.glamm, plan) == 32 * 321 * (2 * 4096 + 11008) * 2


# --- the compiled code itself -------------------------------------------------------------------------------

_DIS = r"""
import dis, json, marshal, sys, types
co = marshal.loads(open(sys.argv[1], 'rb').read()[16:])
def walk(c, pre=''):
    for k in c.co_consts:
        if isinstance(k, types.CodeType):
            yield pre + k.co_name, k
            yield from walk(k, pre + k.co_name + '.')
out = {}
for name, c in walk(co):
    line, ins = None, []
    for i in dis.get_instructions(c):
        line = i.starts_line or line
        ins.append([line, i.offset, i.opname, i.argrepr, repr(i.argval) if i.opname == 'LOAD_CONST' else None])
    out[f'{name}@{c.co_firstlineno}'] = ins
print(json.dumps(out))
"""  # noqa: E501


def _python310() -> str | None:
    found = [os.environ.get("LITELVLM_PYTHON310"), shutil.which("python3.10"),
             *sorted(glob.glob(os.path.expanduser("~/.pyenv/versions/3.10*/bin/python")))]
    check = "import sys; assert sys.version_info[:2] == (3, 10)"
    return next(
        (p for p in found if p and subprocess.run([p, "-c", check], capture_output=True).returncode == 0),
                None)


@pytest.fixture(scope="module")
def compiled(official, tmp_path_factory):
    """{file: {"Class.method@first_line": [[line, offset, opname, argrepr, const], ...]}} of both .pyc
    files."""
    py = _python310()
    if py is None:
        pytest.skip("no CPython 3.10 to unmarshal the official .pyc files (marshal's format is per Python "
                    "version): none as python3.10 on the PATH, in ~/.pyenv/versions/3.10*, or in "
                    "LITELVLM_PYTHON310")
    tmp = tmp_path_factory.mktemp("pyc")
    out = {}
    for name in ("modeling_llama_fastv", "modelling_sparse_llama"):
        data = official.show("LiteLVLM.git", f"{PYC}{name}.cpython-310.pyc")
        (tmp / f"{name}.pyc").write_bytes(data)
        res = subprocess.run([py, "-c", _DIS, str(tmp / f"{name}.pyc")], capture_output=True, text=True,
                             check=True)
        out[name] = json.loads(res.stdout)
    return out


def _expression(ins, line: int, target: str) -> str:
    """The right-hand side of ``self.<target> += <expr>`` on source line ``line``, rebuilt from its
    bytecode."""
    ops = {"BINARY_MULTIPLY": "*", "BINARY_POWER": "**", "BINARY_ADD": "+", "BINARY_SUBTRACT": "-"}
    body = [i for i in ins if i[0] == line]
    start = next(k for k, i in enumerate(body) if i[2] == "LOAD_ATTR" and i[3] == target) + 1
    stack: list[str] = []
    for _, _, op, arg, const in body[start:]:
        if op == "INPLACE_ADD":
            break
        if op == "LOAD_FAST":
            stack.append(arg)
        elif op == "LOAD_CONST":
            stack.append(const)
        else:
            b, a = stack.pop(), stack.pop()
            stack.append(f"({a}{ops[op]}{b})")
    assert len(stack) == 1
    return stack[0]


def _first(ins, line: int, opname: str | None = None, arg: str | None = None) -> int:
    """Offset of the first instruction of ``line`` (matching ``opname`` / ``arg`` when given)."""
    return next(i[1] for i in ins if i[0] == line and (opname is None or i[2] == opname)
                and (arg is None or i[3] == arg))


def test_fastv_port_counters_in_the_bytecode(compiled):
    ins = compiled["modeling_llama_fastv"]["LlamaModel.forward@621"]
    arch = get_arch("glamm-7b")
    s = arch.glamm
    flops_expr, act_expr = _expression(ins, 703, "FLOPs"), _expression(ins, 707, "activation_memory")
    for n in (1, 194, 321, 705):  # the compiled per-layer terms are ours
        env = {"n": n, "d": s.llm_hidden, "m": s.llm_intermediate, "b_m": 2}
        one = token_plan(arch, "none", 576)
        assert eval(flops_expr, env) * s.llm_layers == paper_flops(s, type(one).uniform(n))
        assert eval(act_expr, env) * s.llm_layers == paper_activation_bytes(s, type(one).uniform(n))
    assert [i[3] for i in ins if i[0] == 702 and i[2] == "LOAD_ATTR"] == ["layers", "mlp", "up_proj",
                                                                          "out_features"]
    assert any(i[0] == 706 and i[3] == "element_size" for i in ins)
    # order inside one iteration: count (L700-707) < FastV's in-place pruning (L775) < the layer call (L833)
    loop = _first(ins, 699, "FOR_ITER")
    count, prune = _first(ins, 700), _first(ins, 775)
    call = _first(ins, 833, "CALL_FUNCTION_KW")
    assert loop < count < prune < call
    # the timer: CUDA events before the loop (L694-697), end after it (L851), the final norm outside (L865)
    assert _first(ins, 694, "LOAD_ATTR", "Event") < loop < _first(ins, 851) < _first(
        ins, 865, "LOAD_METHOD", "norm")
    assert any(i[0] == 862 and i[4] == "1073741824" for i in ins) and any(i[0] == 858 and i[4] == "1e-12"
                                                                          for i in ins)
    # L693's guard (``shape[1] != 1``) covers only the start events: it jumps to the loop, so the counters run
    # on every forward (the referring-segmentation evaluation runs one teacher-forced forward, no decode step)
    assert next(i[3] for i in ins if i[0] == 693 and i[2] == "POP_JUMP_IF_FALSE") == f"to {_first(ins, 699)}"


def test_fastv_port_settings_in_the_bytecode(compiled):
    """``LlamaModel.__init__`` (first line 563) L577-581: sys length 36, 576 image tokens, rank 192, layer 2,
    in place (``self.<attr> = <constant>``: LOAD_CONST, LOAD_FAST self, STORE_ATTR)."""
    init = compiled["modeling_llama_fastv"]["LlamaModel.__init__@563"]
    stored = {b[3]: a[4] for a, b in zip(init, init[2:]) if b[2] == "STORE_ATTR" and a[2] == "LOAD_CONST"}
    assert {k: (stored[k], line) for k,
            line
            in (("fast_v_sys_length", 577), ("fast_v_image_token_length", 578),
                ("fast_v_attention_rank", 579), ("fast_v_agg_layer", 580), ("fast_v_inplace", 581))} == {
        k: (v, line) for k, v,
        line
        in (("fast_v_sys_length", "36", 577), ("fast_v_image_token_length", "576", 578),
            ("fast_v_attention_rank", "192", 579), ("fast_v_agg_layer", "2", 580),
            ("fast_v_inplace", "True", 581))}
    assert {b[3]: b[0] for b in init if b[2] == "STORE_ATTR" and b[3].startswith("fast_v_")} == {
        "fast_v_sys_length": 577, "fast_v_image_token_length": 578, "fast_v_attention_rank": 579,
        "fast_v_agg_layer": 580, "fast_v_inplace": 581}


def test_sparse_port_counters_in_the_bytecode(compiled):
    ins = compiled["modelling_sparse_llama"]["LlamaDynamicvitModel.forward@101"]
    s = get_arch("glamm-7b").glamm
    expr = _expression(ins, 222, "all_FLOPs")
    env = {"n": 321, "d": s.llm_hidden, "m": s.llm_intermediate}
    assert eval(expr, env) == 4 * 321 * s.llm_hidden ** 2 + 2 * 321 ** 2 * s.llm_hidden \
        + 3 * 321 * s.llm_hidden * s.llm_intermediate
    loop = _first(ins, 217, "FOR_ITER")
    # count (L219-222) < pruning_loc test (L224) < the layer runs (L229-237) < its outputs are pruned (L317)
    assert loop < _first(ins, 219) < _first(ins, 224, "LOAD_ATTR", "pruning_loc") < _first(ins, 230) \
        < _first(ins, 317, "LOAD_GLOBAL", "batch_index_select")
    assert not any(i[3] == "activation_memory" for i in ins)  # no activation count in this port


class _Clock:
    """A fake ``time`` module: ``perf_counter`` reads a clock the toy modules advance."""

    def __init__(self) -> None:
        self.now = 0.0

    def perf_counter(self) -> float:
        return self.now


def test_layer_loop_timer_spans_the_decoder_layers_only(monkeypatch):
    """The paper's prefill time (L693-699, L850-855): from the first decoder layer's start to the last one's
    end, summed over forwards longer than one token; embedding and norm (L865) outside."""
    import torch

    from litelvlm.cost import timing as layer_timer
    from litelvlm.cost.timing import LayerLoopTimer

    clock = _Clock()
    monkeypatch.setattr(layer_timer, "time", clock)

    class Step(torch.nn.Module):
        def __init__(self, cost: float) -> None:
            super().__init__()
            self.cost = cost

        def forward(self, hidden, **kwargs):
            clock.now += self.cost
            return hidden

    embed, layers, norm = Step(100.0), torch.nn.ModuleList([Step(1.0), Step(2.0), Step(3.0)]), Step(1000.0)

    def forward(length: int, pieces: bool = False):
        hidden = embed(torch.zeros(1, length, 4))
        for i, layer in enumerate(layers):
            if pieces and i == 1:  # pruning inside the loop (FastV): inside the span, as in the official loop
                clock.now += 10.0
            hidden = layer(hidden)
        return norm(hidden)

    with LayerLoopTimer(layers) as t:
        forward(7)
    assert (t.ms, t.forwards) == (6000.0, 1)
    with LayerLoopTimer(layers) as t:
        forward(7, pieces=True)
        forward(1)  # a decode step is not timed
        forward(5)
    assert (t.ms, t.forwards) == (22000.0, 2)
    assert not layers[0]._forward_pre_hooks and not layers[-1]._forward_hooks


if __name__ == "__main__":  # pragma: no cover
    sys.exit(pytest.main([__file__, "-q"]))
