"""litelvlm.cost.stage_count: FLOPs and weight bytes by stage of one grounding call, and the stages'
roofline. On the tiny random GLaMM the prefill's FLOPs are the project's analytic LLM count, the vision
stage's FLOPs are FlopCounterMode's count of the CLIP towers run alone and its weight bytes their parameters'
bytes, the stages add up to the total, and counting changes nothing in the call; on a stand-in pipeline, a
weight counts once per stretch of a stage, and a lookup in a table counts the rows it reads."""

from __future__ import annotations

import math
import types

import pytest
import torch
from torch import nn
from torch.utils._python_dispatch import _get_current_dispatch_mode
from torch.utils.flop_counter import FlopCounterMode

from analysis.common.measures.flops import DecoderSizes, TokenPlan, llm_flops_exact
from litelvlm.cost.stage_count import (
    HOST_STAGES,
    StageCount,
    StageCounter,
    count_stages,
    rooflines_ms,
    stage_roofline_ms,
)
from litelvlm.cost.stages import COLUMNS, OTHER, PIPELINE_STEPS, STAGES, TOTAL
from litelvlm.llm.captured import install, runner_of, uninstall
from litelvlm.lvlm import encoders
from litelvlm.machine.memory import weight_storages


def _hooks(module: nn.Module) -> int:
    return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in module.modules())


@pytest.fixture(scope="module")
def glamm_call(tiny_glamm, coco128):
    """The whole grounding call of ``none`` on the first COCO-128 image (image forwards, prompt, ``ground``):
    (a plain call's output, the counted call's output and counts, the CLIP towers' recorded calls)."""
    from litelvlm.data.refer import load_refer

    pipe = tiny_glamm
    rec = load_refer(coco128, None, split="all")[0]
    image = rec.image()

    def call(method: str = "none", budget=None):
        return pipe.ground(pipe.with_sentences(pipe.prepare_image(image), [rec.sentence]), method, budget)

    clip = pipe.clip.modules()
    towers: dict[str, list] = {}
    embeddings: dict[nn.Embedding, int] = {}

    def record(name):
        def pre(mod, args, kwargs):
            towers.setdefault(name, []).append((args, kwargs))
        return pre

    def rows(mod, args):
        embeddings[mod] = embeddings.get(mod, 0) + int(args[0].numel())

    handles = [getattr(clip, n).register_forward_pre_hook(record(n), with_kwargs=True)
               for n, _ in clip.named_children()]
    handles += [m.register_forward_pre_hook(rows) for m in clip.modules() if isinstance(m, nn.Embedding)]
    with torch.no_grad():
        plain = call()
        towers.clear()
        embeddings.clear()
        hooks = _hooks(pipe.model) + _hooks(clip)
        try:
            counted, counts = count_stages(pipe, call)
            hooks_after = _hooks(pipe.model) + _hooks(clip)
        finally:
            for h in handles:
                h.remove()
    return types.SimpleNamespace(pipe=pipe, call=call, plain=plain, counted=counted, counts=counts,
                                 towers=towers, embeddings=embeddings, clip=clip, hooks=(hooks, hooks_after))


def test_the_stages_add_up_to_the_total(glamm_call):
    counts = glamm_call.counts
    assert list(counts) == list(COLUMNS)
    assert all(isinstance(c, StageCount) and c.flops >= 0 and c.weight_bytes >= 0 for c in counts.values())
    assert sum(counts[s].flops for s in (*STAGES, OTHER)) == counts[TOTAL].flops
    assert sum(counts[s].weight_bytes for s in (*STAGES, OTHER)) == counts[TOTAL].weight_bytes
    assert all(counts[s].flops > 0 and counts[s].weight_bytes > 0 for s in ("vision", "prefill", "mask"))
    assert counts["selection"] == (0, 0) and counts["decode"] == (0, 0)  # none selects, decodes nothing


def test_the_prefills_flops_are_the_projects_llm_count(glamm_call):
    """The decoder-layer loop's FLOPs are ``llm_flops_exact`` without the LM head at the call's sequence
    length (q/k/v/o, both attention products over the full n x n scores, SwiGLU's three matrices)."""
    sizes = DecoderSizes.of(glamm_call.pipe.language_model.config)
    want = llm_flops_exact(sizes, TokenPlan.uniform(int(glamm_call.counted.seq_len)), lm_head=False)
    assert glamm_call.counts["prefill"].flops == pytest.approx(want, rel=1e-3)


def test_the_vision_stage_is_the_clip_towers_run_alone(glamm_call):
    """Its FLOPs: FlopCounterMode over each CLIP tower the call ran, with the inputs it ran them on (the
    vision tower; the text tower with its projection, which embeds GLaMM's questions); its weight bytes: each
    of their parameters once, a position or token table by the rows the call looked up."""
    clip, towers = glamm_call.clip, glamm_call.towers
    assert "vision_model" in towers
    flops = 0
    with torch.no_grad():
        for name, calls in towers.items():
            for args, kwargs in calls:
                with FlopCounterMode(display=False) as fc:
                    getattr(clip, name)(*args, **kwargs)
                flops += fc.get_total_flops()
    assert glamm_call.counts["vision"].flops == pytest.approx(flops, rel=1e-3)
    tables = {m.weight.untyped_storage()._cdata: min(n * m.weight[0].numel() * m.weight.element_size(),
                                                     m.weight.numel() * m.weight.element_size())
              for m, n in glamm_call.embeddings.items()}
    weights = weight_storages(*(getattr(clip, n) for n in towers), buffers=False)
    want = sum(tables.get(key, nbytes) for key, nbytes in weights.items())
    assert glamm_call.counts["vision"].weight_bytes == want


def test_counting_changes_nothing_in_the_call(glamm_call):
    plain, counted = glamm_call.plain, glamm_call.counted
    assert torch.equal(counted.masks, plain.masks) and torch.equal(counted.mask_logits, plain.mask_logits)
    assert torch.equal(counted.seg_positions, plain.seg_positions) and counted.seq_len == plain.seq_len
    assert _get_current_dispatch_mode() is None   # the mode and every hook of the count are gone
    assert glamm_call.hooks[0] == glamm_call.hooks[1]


def test_a_pruned_call_counts_its_shorter_prefill_and_leaves_the_captured_paths_accounts(glamm_call):
    """LiteLVLM@64: the prefill of the shorter sequence, its selection counted apart; under a captured prefill
    and captured encoders the counted call runs them eagerly, and that is no run's eager call afterwards."""
    pipe = glamm_call.pipe
    runner = install(pipe.language_model, "compile-eager")
    captured = encoders.install(pipe, "compile-eager")
    try:
        with torch.no_grad():
            out, counts = count_stages(pipe, lambda: glamm_call.call("litelvlm", 64))
        assert not runner.eager and not runner.counts
        assert captured.encoders and not any(e.eager or e.counts for e in captured.encoders.values())
    finally:
        uninstall(pipe.language_model)
        encoders.uninstall(pipe)
    assert runner_of(pipe.language_model) is None and encoders.runner_of(pipe) is None
    sizes = DecoderSizes.of(pipe.language_model.config)
    want = llm_flops_exact(sizes, TokenPlan.uniform(int(out.seq_len)), lm_head=False)
    assert counts["prefill"].flops == pytest.approx(want, rel=1e-3)
    assert counts["prefill"].flops < glamm_call.counts["prefill"].flops and counts["selection"].flops > 0
    assert counts["vision"] == glamm_call.counts["vision"]


# -- a stand-in pipeline: what counts once, what counts again -----------------------------------------------
class _Twice(nn.Module):
    """A module applying one linear layer twice (one weight read twice in one stretch)."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.linear = nn.Linear(width, width, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(self.linear(x))


class _Pipe:
    """The little of the family contract the counter asks: a vision tower, two decoder layers, a token
    table, the contract's steps (doing nothing)."""

    device = torch.device("cpu")

    def __init__(self, width: int = 8) -> None:
        torch.manual_seed(0)
        self.tower = _Twice(width)
        self.table = nn.Embedding(100, width)
        self.layers = nn.ModuleList([nn.Linear(width, width, bias=False) for _ in range(2)])
        self.language_model = types.SimpleNamespace(layers=self.layers)

    def __getattr__(self, name: str):
        if name in PIPELINE_STEPS or name == "tower_context":
            return lambda *args, **kwargs: None
        raise AttributeError(name)

    def stage_modules(self) -> dict:
        return {"vision": [self.tower]}

    def call(self) -> torch.Tensor:
        x = self.table(torch.tensor([[1, 2, 3]]))       # other: 3 rows of the table
        self.tower(x)                                   # vision: its weight read twice, one stretch
        self.tower(x)                                   # vision again: a second stretch
        for layer in self.layers:                       # prefill: a 3-token sequence
            x = layer(x)
        for _ in range(2):                              # two decoding steps of one token
            y = x[:, :1]
            for layer in self.layers:
                y = layer(y)
        return x


def test_a_weight_counts_once_per_stretch_and_a_lookup_counts_its_rows():
    pipe = _Pipe()
    w = 8 * 8 * 4
    _, counts = StageCounter(pipe).count(pipe.call)
    assert counts["vision"] == StageCount(2 * 2 * (2 * 3 * 8 * 8), 2 * w)  # two calls, each reads it once
    assert counts["prefill"] == StageCount(2 * 2 * 3 * 8 * 8, 2 * w)
    assert counts["decode"] == StageCount(2 * 2 * 2 * 8 * 8, 2 * 2 * w)    # each step reads the layers
    assert counts[OTHER].weight_bytes == 3 * 8 * 4                           # 3 rows, not the table
    assert counts[TOTAL].weight_bytes == sum(counts[s].weight_bytes for s in (*STAGES, OTHER))


def test_the_roofline_of_a_stage_and_of_the_call():
    assert stage_roofline_ms(2e12, 1e9, 100.0, 1000.0) == pytest.approx(20.0)   # compute-bound: 2e12 / 1e14
    assert stage_roofline_ms(1e9, 3e9, 100.0, 1000.0) == pytest.approx(3.0)     # weight-bound: 3e9 / 1e12
    assert math.isnan(stage_roofline_ms(1e9, 1e9, None, 1000.0))
    assert math.isnan(stage_roofline_ms(1e9, 1e9, 100.0, 0.0))
    counts = {s: StageCount(10 ** 12, 10 ** 9) for s in (*STAGES, OTHER)}
    counts[TOTAL] = StageCount(0, 0)
    roof = rooflines_ms(counts, 100.0, 1000.0)
    assert list(roof) == list(COLUMNS)
    assert all(roof[s] == 0.0 for s in HOST_STAGES if s in roof)                # the host's work: none on it
    assert all(roof[s] == pytest.approx(10.0) for s in (*STAGES, OTHER) if s not in HOST_STAGES)
    assert roof[TOTAL] == pytest.approx(sum(v for s, v in roof.items() if s != TOTAL))
    assert all(math.isnan(v) for s, v in rooflines_ms(counts, None, None).items() if s not in HOST_STAGES)


@pytest.mark.parametrize("op", [torch.ops.aten._scaled_dot_product_efficient_attention,
                                torch.ops.aten._scaled_dot_product_flash_attention,
                                torch.ops.aten._scaled_dot_product_cudnn_attention,
                                torch.ops.aten._scaled_dot_product_flash_attention_for_cpu])
def test_the_fused_attention_kernels_count_grouped_query_heads(op, monkeypatch):
    """Both attention products per query head, a key/value head serving its group of query heads (GQA: the
    LLMs and towers of Qwen2.5-VL, InternVL3), whatever the torch: torch 2.11's formula refuses unequal heads
    (stood in for here), 2.14's counts them; as torch's formula where the heads are equal."""
    from torch.utils import flop_counter
    from torch.utils.flop_counter import flop_registry

    from litelvlm.cost.stage_count import FLOP_FORMULAS

    def equal_heads_only(query_shape, key_shape, value_shape):   # torch 2.11's check
        if not query_shape[:2] == key_shape[:2] == value_shape[:2]:
            raise AssertionError("sdpa_flop_count: query/key/value shapes are incompatible")
        return real(query_shape, key_shape, value_shape)

    real = flop_counter.sdpa_flop_count
    monkeypatch.setattr(flop_counter, "sdpa_flop_count", equal_heads_only)
    q, kv = torch.empty(2, 8, 5, 4, device="meta"), torch.empty(2, 2, 7, 4, device="meta")
    assert FLOP_FORMULAS[op](q, kv, kv, out_val=None) == 2 * 2 * 8 * 5 * 7 * (4 + 4)
    full = torch.empty(2, 8, 7, 4, device="meta")
    reference = flop_registry[torch.ops.aten._scaled_dot_product_efficient_attention]
    assert FLOP_FORMULAS[op](q, full, full, out_val=None) == reference(q, full, full, out_val=None)


def test_an_op_whose_formula_refuses_its_inputs_counts_0_and_is_named(monkeypatch, caplog):
    from litelvlm.cost import stage_count

    def refuses(*args, **kwargs):
        raise AssertionError("shapes are incompatible")

    monkeypatch.setitem(stage_count.FLOP_FORMULAS, torch.ops.aten.mm, refuses)
    pipe = _Pipe()
    counter = StageCounter(pipe)
    with caplog.at_level("WARNING", logger="litelvlm.cost.stage_count"):
        _, counts = counter.count(pipe.call)
    assert counter.uncounted == {"aten.mm": 10} and "aten.mm x10" in caplog.text  # every product of the call
    assert counts[TOTAL].flops == 0 and counts["prefill"].weight_bytes == 2 * 8 * 8 * 4   # its reads still
