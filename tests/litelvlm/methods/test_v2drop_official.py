"""V2Drop keeps the tokens, and runs the layers, that its official code does (LLaVA and Qwen2-VL variants).

Transcribes xuyang-liu16/V2Drop @ 219e03e:

* ``llava/model/language_model/V2Drop.py`` L64-107 and L121-185 (``V2DropLlamaModel.forward``, the prefill
  without a cache): positions ``0..S-1`` (L71-76), the 4-D causal mask (L93-97), and in the layer loop the
  image detection (L122-128: ``size(1) > 576`` means 576 image tokens at index 35, reset at layer 0), the drop
  before the layers ``{3, 17, 22}`` (L129-172: the L2 norm of current minus previous hidden states of the
  visual tokens, ``k = max(1, int(v * keep_ratio))`` with the ratios 0.5 / 0.5 / 0, ``topk``, sorted
  ``keep_indexs``, hidden states, ``position_ids`` and mask gathered) and ``prev_hidden_states`` (L173);
* ``Qwen2-VL/Qwen2VL_V2Drop/modeling_qwen2_vl_self.py`` L292-396 (``DART.forward``, the same loop): the image
  at ``DART_config``'s start and length (L337-346), the layers ``{3, 16, 22}`` with the ratios 0.25 / 0.05 / 0
  (L347-366), ``cache_position[keep_indexs]``, ``_update_causal_mask(None, ...)`` (L378-381: no mask under
  the flash attention its evaluation runs, L191-194, i.e. causal over the kept rows) and
  ``position_ids[:, :, keep_indexs]`` (L382: the 3-D M-RoPE ids kept).

Parameters the official code hard-codes become arguments: the image start and length (35 / 576 in the LLaVA
code), the layers and ratios (``targets``), and the floor 1 of ``max(1, ...)`` (``floor``: the module's budget
K; ``floor=1`` is the official statement, the official schedule). The official code targets transformers 4.37
(RoPE computed inside the attention from ``position_ids``); here the model's rotary embedding of the gathered
``position_ids`` is handed to the decoder layers. The decoder layers run with an explicit additive causal mask
built here, so the reference shares no step with the project's ``run_layers``. Bookkeeping the official code
does not have (the original sequence row of each present row, to compare the kept tokens) is marked
``# bookkeeping``.

Compared: the kept visual tokens after every drop (bit-identical) and the final normed hidden states, on small
random Llama (32 layers) and Qwen2.5-VL text (28 layers) models at odd sizes over every budget 1..N, then
through the tiny GLaMM and the tiny Sa2VA pipelines (the official layers mapped to their depth).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from transformers import LlamaConfig, LlamaModel
from transformers.models.qwen2_5_vl.configuration_qwen2_5_vl import Qwen2_5_VLTextConfig
from transformers.models.qwen2_5_vl.modeling_qwen2_5_vl import Qwen2_5_VLTextModel

from litelvlm.errors import LiteLVLMError
from litelvlm.methods import get_method
from litelvlm.methods import v2drop as v2
from litelvlm.methods.v2drop_qwen import QWEN2_VL
from tests.fixtures.layers import layer_inputs

OFFICIAL_COMMIT = "219e03e"
LLAVA_TARGETS = {3: 0.5, 17: 0.5, 22: 0}    # V2Drop.py L129, L139-144
QWEN_TARGETS = {3: 0.25, 16: 0.05, 22: 0}   # modeling_qwen2_vl_self.py L347, L359-364


# ----------------------------------------------------------------------------------------------
# Official code, transcribed
# ----------------------------------------------------------------------------------------------

def additive_causal(n: int, dtype: torch.dtype) -> torch.Tensor:
    """(1, 1, n, n) the 4-D causal mask of an unpadded sequence (``_prepare_4d_causal_attention_mask``)."""
    return torch.full((n, n), torch.finfo(dtype).min, dtype=dtype).triu(1)[None, None]


def official_llava(lm, inputs_embeds, image_start, image_len, floor=1, targets=None):
    """V2Drop.py L64-185 (no cache, batch 1): (kept visual indices after each drop, final normed hidden)."""
    targets = LLAVA_TARGETS if targets is None else targets
    batch_size, seq_length = inputs_embeds.shape[:2]
    position_ids = torch.arange(0, seq_length, dtype=torch.long).unsqueeze(0)
    attention_mask = additive_causal(seq_length, inputs_embeds.dtype)
    hidden_states = inputs_embeds
    prev_hidden_states, image_token_amount_after_selection = None, 0
    rows, kept = torch.arange(seq_length), []  # bookkeeping
    for layer_idx, decoder_layer in enumerate(lm.layers):
        current_hidden_states = hidden_states
        if current_hidden_states.size(1) > image_len:
            image_token_amount = image_len
        else:
            image_token_amount = 0
        if layer_idx == 0:
            image_token_amount_after_selection = image_token_amount
        if layer_idx in targets and current_hidden_states.size(1) > 1 \
                and image_token_amount_after_selection > 0:
            candidate_indices = torch.arange(image_start, image_token_amount_after_selection + image_start)
            current_candidates = current_hidden_states[:, candidate_indices, :]
            prev_candidates = prev_hidden_states[:, candidate_indices, :]
            l2_diff_candidate = torch.norm(current_candidates - prev_candidates, p=2, dim=-1)[0]
            keep_ratio = targets[layer_idx]
            k = max(floor, int(image_token_amount_after_selection * keep_ratio))
            topk_values, topk_indices = torch.topk(l2_diff_candidate, k=k, largest=True)
            selected_indices = candidate_indices[topk_indices]
            current_seq_length = current_hidden_states.size(1)
            keep_indexs = torch.cat((torch.arange(image_start), selected_indices,
                                     torch.arange(image_token_amount_after_selection + image_start,
                                                  current_seq_length)))
            keep_indexs = keep_indexs.sort().values
            current_hidden_states = current_hidden_states[:, keep_indexs, :]
            position_ids = position_ids[:, keep_indexs]
            attention_mask = attention_mask[:, :, keep_indexs, :][..., keep_indexs]
            image_token_amount_after_selection = selected_indices.shape[0]
            rows = rows[keep_indexs]  # bookkeeping
            kept.append(rows[(rows >= image_start) & (rows < image_start + image_len)] - image_start)
        prev_hidden_states = current_hidden_states
        hidden_states = current_hidden_states
        pe = lm.rotary_emb(hidden_states, position_ids)
        layer_outputs = decoder_layer(hidden_states, attention_mask=attention_mask, position_ids=position_ids,
                                      position_embeddings=pe)
        hidden_states = layer_outputs[0] if isinstance(layer_outputs, tuple) else layer_outputs
    return kept, lm.norm(hidden_states)


def official_qwen(lm, inputs_embeds, position_ids, image_token_start_index, image_token_length, floor=1,
                  targets=None):
    """modeling_qwen2_vl_self.py L292-396 (no cache, batch 1, flash attention's masking): (kept visual indices
    after each drop, final normed hidden)."""
    targets = QWEN_TARGETS if targets is None else targets
    cache_position = torch.arange(0, inputs_embeds.shape[1])
    causal_mask = None  # _update_causal_mask under flash_attention_2, no padding (L191-194)
    hidden_states = inputs_embeds
    prev_hidden_states, image_token_amount_after_selection = None, 0
    rows, kept = torch.arange(inputs_embeds.shape[1]), []  # bookkeeping
    for decoder_layer_idx, decoder_layer in enumerate(lm.layers):
        current_hidden_states = hidden_states
        if decoder_layer_idx == 0:
            image_token_amount_after_selection = image_token_length
        if decoder_layer_idx in targets and current_hidden_states.size(1) > 1 \
                and image_token_amount_after_selection > 0:
            candidate_indices = torch.arange(image_token_start_index,
                                             image_token_amount_after_selection + image_token_start_index)
            current_candidates = current_hidden_states[:, candidate_indices, :]
            prev_candidates = prev_hidden_states[:, candidate_indices, :]
            l2_diff_candidate = torch.norm(current_candidates - prev_candidates, p=2, dim=-1)[0]
            keep_ratio = targets[decoder_layer_idx]
            k = max(floor, int(image_token_amount_after_selection * keep_ratio))
            topk_values, topk_indices = torch.topk(l2_diff_candidate, k=k, largest=True)
            retained_image_tokens_index = candidate_indices[topk_indices]
            current_seq_length = current_hidden_states.size(1)
            keep_indexs = torch.cat((torch.arange(image_token_start_index), retained_image_tokens_index,
                                     torch.arange(
                                         image_token_start_index + image_token_amount_after_selection,
                                         current_seq_length)))
            keep_indexs = keep_indexs.sort().values
            current_hidden_states = current_hidden_states[:, keep_indexs, :]
            cache_position = cache_position[keep_indexs]
            causal_mask = None  # L379-381: _update_causal_mask(None, ...) under flash attention
            position_ids = position_ids[:, :, keep_indexs]
            image_token_amount_after_selection = retained_image_tokens_index.shape[0]
            rows = rows[keep_indexs]  # bookkeeping
            visual = (rows >= image_token_start_index) & (rows < image_token_start_index + image_token_length)
            kept.append(rows[visual] - image_token_start_index)
        prev_hidden_states = current_hidden_states
        hidden_states = current_hidden_states
        pe = lm.rotary_emb(hidden_states, position_ids)
        # flash attention without a mask is causal over the rows it holds: an additive mask for these layers
        mask = causal_mask
        if mask is None:
            mask = additive_causal(hidden_states.shape[1], hidden_states.dtype)
        layer_outputs = decoder_layer(hidden_states, attention_mask=mask, position_ids=position_ids,
                                      position_embeddings=pe)
        hidden_states = layer_outputs[0] if isinstance(layer_outputs, tuple) else layer_outputs
    return kept, lm.norm(hidden_states)


# ----------------------------------------------------------------------------------------------
# Small random models at odd sizes
# ----------------------------------------------------------------------------------------------

SMALL = dict(vocab_size=8, hidden_size=32, intermediate_size=48, num_attention_heads=4, num_key_value_heads=2,
             max_position_embeddings=256, attn_implementation="sdpa", initializer_range=0.2)
SIZES = [(7, 13, 5), (1, 9, 3)]   # (text before the image, visual tokens N, text after)


@pytest.fixture(scope="module")
def llama():
    """A random 32-layer Llama (LLaVA-1.5-7B's depth: the official layers 3 / 17 / 22 as they are)."""
    torch.manual_seed(0)
    return LlamaModel(LlamaConfig(num_hidden_layers=32, **SMALL)).eval()


@pytest.fixture(scope="module")
def qwen():
    """A random 28-layer Qwen2.5-VL text model (Qwen2-VL-7B's depth: the official layers 3 / 16 / 22)."""
    torch.manual_seed(1)
    cfg = Qwen2_5_VLTextConfig(num_hidden_layers=28, bos_token_id=None, eos_token_id=None,
                               rope_scaling={"type": "mrope", "mrope_section": [2, 1, 1]}, **SMALL)
    return Qwen2_5_VLTextModel(cfg).eval()


def mrope_ids(before: int, rows: int, cols: int, after: int) -> torch.Tensor:
    """(3, 1, S) M-RoPE ids of text, one ``rows x cols`` image, text (``get_rope_index``'s layout)."""
    t = torch.arange(before).expand(3, before)
    r, c = torch.meshgrid(torch.arange(rows), torch.arange(cols), indexing="ij")
    image = torch.stack([torch.zeros(rows * cols, dtype=torch.long), r.flatten(), c.flatten()]) + before
    start = int(image.max()) + 1
    return torch.cat([t, image, (start + torch.arange(after)).expand(3, after)], dim=1)[:, None]


def _assert_run_equal(run: v2.V2DropRun, kept, final, plan) -> None:
    """The same tokens after every drop (bit-identical), the same final hidden states."""
    assert len(run.kept) == len(plan) == len(kept)
    assert [k.tolist() for k in run.kept] == [k.tolist() for k in kept]
    torch.testing.assert_close(run.final, final, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("before,n,after", SIZES)
def test_llava_every_budget_equals_the_official_loop(llama, before, n, after):
    g = torch.Generator().manual_seed(n)
    embeds = torch.randn(1, before + n + after, 32, generator=g)
    pos = torch.arange(embeds.shape[1])[None]
    with torch.no_grad():
        for k in range(1, n):
            plan = v2.stage_plan(k, n, 32)
            assert [layer for layer, _ in plan] == [3, 17, 22]
            run = v2.v2drop_run(llama, embeds, pos, before, n, plan)
            kept, final = official_llava(llama, embeds, before, n, floor=k)
            _assert_run_equal(run, kept, final, plan)
        assert v2.stage_plan(n, n, 32) == ()  # K = N: the official floor keeps every token at every drop
        kept, final = official_llava(llama, embeds, before, n, floor=n)
        assert all(x.tolist() == list(range(n)) for x in kept)
        torch.testing.assert_close(llama.norm(v2.run_layers(llama, embeds, pos)), final, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("before,grid,after", [(7, (3, 5), 5), (2, (1, 7), 4)])
def test_qwen_every_budget_equals_the_official_loop(qwen, before, grid, after):
    n = grid[0] * grid[1]
    g = torch.Generator().manual_seed(n)
    embeds = torch.randn(1, before + n + after, 32, generator=g)
    pos = mrope_ids(before, *grid, after)
    with torch.no_grad():
        for k in range(1, n):
            plan = v2.stage_plan(k, n, 28, defaults=QWEN2_VL)
            assert [layer for layer, _ in plan] == [3, 16, 22]
            run = v2.v2drop_run(qwen, embeds, pos, before, n, plan)
            kept, final = official_qwen(qwen, embeds, pos, before, n, floor=k)
            _assert_run_equal(run, kept, final, plan)


def test_the_official_schedules_are_budget_one():
    """``floor=1``, the official code: 576 -> 288 -> 144 -> 1 on LLaVA, N -> N/4 -> N/80 -> 1 on Qwen2-VL."""
    assert v2.stage_plan(1, 576, 32) == ((3, 288), (17, 144), (22, 1))
    assert v2.stage_plan(1, 1296, 28, defaults=QWEN2_VL) == ((3, 324), (16, 16), (22, 1))
    assert v2.stage_plan(64, 576, 32) == ((3, 288), (17, 144), (22, 64))
    assert v2.stage_plan(192, 576, 32) == ((3, 288), (17, 192), (22, 192))
    spec = get_method("v2drop")
    assert spec.token_schedule(64, 576, 32) == ((0, 576), (3, 288), (17, 144), (22, 64))
    assert spec.token_schedule(192, 576, 32) == ((0, 576), (3, 288), (17, 192))
    assert spec.token_schedule(576, 576, 32) == ((0, 576),)
    assert spec.attention_layers(32) == [] and spec.positions == "keep" and spec.stage.name == "llm-stages"
    assert get_method("v2drop", "qwen2.5-vl").token_schedule(1, 1296, 28) == ((0, 1296), (3, 324), (16, 16),
                                                                               (22, 1))


def test_layers_on_other_depths_and_the_options():
    assert v2.mapped_layers(32) == (3, 17, 22) and v2.mapped_layers(4) == (1, 2, 3)
    assert v2.mapped_layers(28, QWEN2_VL) == (3, 16, 22) and v2.mapped_layers(36, QWEN2_VL) == (4, 21, 28)
    assert v2.mapped_layers(2, QWEN2_VL) == (1, 1, 1)
    assert v2.stage_plan(5, 42, 2, defaults=QWEN2_VL) == ((1, 5),)  # drops on one layer: one drop to K
    assert v2.stage_plan(5, 42, 8, layers="2,4", ratios="0.5,0") == ((2, 21), (4, 5))
    assert v2.stage_plan(5, 42, 8, layers=(2, 4), ratios=(0.5, 0)) == ((2, 21), (4, 5))
    for bad in ({"layers": "0,4", "ratios": "0.5,0"}, {"layers": "4,2", "ratios": "0.5,0"},
                {"layers": "2,4", "ratios": "0.5"}, {"layers": "2,9", "ratios": "0.5,0"},
                {"layers": "2,4", "ratios": "1.5,0"}):
        with pytest.raises(LiteLVLMError, match="V2Drop needs non-decreasing layers"):
            v2.stage_plan(5, 42, 8, **bad)
    with pytest.raises(LiteLVLMError, match="not K = 5: K is the tokens left after the last drop"):
        v2.stage_plan(5, 42, 8, layers="2,4", ratios="0.5,0.5")
    with pytest.raises(LiteLVLMError, match="cannot read 'a,b'"):
        v2.stage_plan(5, 42, 8, layers="a,b")
    opts = {o.dest: o for o in get_method("v2drop").options}
    assert sorted(opts) == ["v2drop_layers", "v2drop_ratios"]
    assert "this project's" in opts["v2drop_layers"].help and "this project's" in opts["v2drop_ratios"].help
    assert get_method("v2drop", "qwen2.5-vl").options == get_method("v2drop").options


# ----------------------------------------------------------------------------------------------
# Through the pipelines (tiny GLaMM: 576 tokens, 4 layers; tiny Sa2VA: 42 tokens, 2 layers)
# ----------------------------------------------------------------------------------------------

#: the official loop's targets for the mapped layers: GLaMM's 4 layers 1 / 2 / 3; the Sa2VA's 2 layers, whose
#: three mapped drops all land on layer 1, one drop there with the last ratio, 0 (down to the floor K)
PIPELINE_TARGETS = {"glamm": {1: 0.5, 2: 0.5, 3: 0}, "sa2va": {1: 0}}


def _compare_pipeline(pipe, prep, budget: int, *, through_ground: bool) -> None:
    ctx = pipe.context(prep)
    family = "sa2va" if ctx.position_ids.dim() == 3 else "glamm"
    defaults = QWEN2_VL if family == "sa2va" else v2.LLAVA
    assert sorted(set(v2.mapped_layers(ctx.num_layers, defaults))) == sorted(PIPELINE_TARGETS[family])
    with torch.no_grad():
        if ctx.position_ids.dim() == 3:
            kept, final = official_qwen(ctx.lm, ctx.embeds, ctx.position_ids, ctx.image_start, ctx.num_visual,
                                        floor=budget, targets=PIPELINE_TARGETS[family])
        else:
            kept, final = official_llava(ctx.lm, ctx.embeds, ctx.image_start, ctx.num_visual, floor=budget,
                                         targets=PIPELINE_TARGETS[family])
        if through_ground:
            out = pipe.ground(prep, "v2drop", budget)
            sel, seg_hidden, seg_rows = out.selection, out.seg_hidden, out.seg_positions
        else:
            sel = pipe.spec("v2drop").select(ctx, budget)
            final_ours, seg_rows = sel.llm_output
            seg_hidden = final_ours[0, seg_rows]
    assert sel.indices.tolist() == kept[-1].tolist()
    assert [sel.parts[f"stage{i}_kept"].tolist() for i in range(len(kept))] == [k.tolist() for k in kept]
    tol = {} if final.dtype == torch.bfloat16 else {"rtol": 1e-4, "atol": 1e-5}
    torch.testing.assert_close(seg_hidden.reshape(-1, final.shape[-1]), final[0, seg_rows], **tol)


@pytest.mark.parametrize("budget", [1, 64, 200, 575])
def test_glamm_pipeline_equals_the_official_loop(glamm, budget):
    _compare_pipeline(*glamm, budget, through_ground=budget in (1, 200))


def test_glamm_pipeline_in_bfloat16_equals_the_official_loop(tiny_glamm_bf16):
    """The variation and its ``topk`` in the model's dtype, as the official L136 computes them (bfloat16 in
    the GLaMM runs: many equal values, so the same ranking needs the same hidden states and ``topk``)."""
    pipe = tiny_glamm_bf16
    image = Image.fromarray(np.random.default_rng(0).integers(0, 255, (160, 200, 3), dtype=np.uint8))
    prep = pipe.prepare(image, ["the dog on the left"])  # the method tests' image (their conftest)
    for budget in (1, 100, 289):
        _compare_pipeline(pipe, prep, budget, through_ground=budget == 100)


@pytest.mark.slow
def test_glamm_pipeline_every_budget(glamm):
    for budget in range(1, 576):
        _compare_pipeline(*glamm, budget, through_ground=False)


def test_sa2va_pipeline_every_budget_equals_the_official_loop(sa2va):
    pipe, prep = sa2va
    assert pipe.spec("v2drop").select.__name__ == "v2drop_qwen_select"
    for budget in range(1, pipe.num_visual(prep)):
        _compare_pipeline(pipe, prep, budget, through_ground=budget in (1, 17))




@pytest.mark.parametrize("family,budgets", [("glamm", (1, 7, 150, 576)), ("sa2va", (1, 5, 41, 42))])
def test_ground_keeps_k_tokens_on_the_declared_schedule(request, family, budgets):
    """``ground`` keeps K visual tokens after the last drop; the layers see the schedule's counts, the kept
    tokens at their original positions (1-D on GLaMM, M-RoPE ids on Sa2VA)."""
    pipe, prep = request.getfixturevalue(family)
    n, depth = pipe.num_visual(prep), len(pipe.language_model.layers)
    lay = pipe.layout(prep, n)
    spec = pipe.spec("v2drop")
    for k in budgets:
        with torch.no_grad(), layer_inputs(pipe.language_model) as seen:
            out = pipe.ground(prep, "v2drop", k)
        assert len(out.kept_indices) == k and out.seq_len == lay.seq_len - n + k
        assert torch.isfinite(out.mask_logits).all()
        stages = spec.token_schedule(k, n, depth)
        per_layer = [next(v for first, v in reversed(stages) if first <= i) for i in range(depth)]
        assert [s for s, _ in seen] == [lay.seq_len - n + v for v in per_layer]
        if k == n:
            continue
        layers = out.selection.parts["stage_layers"].tolist()
        drops = {layer: out.selection.parts[f"stage{i}_kept"] for i, layer in enumerate(layers)}
        visual = torch.arange(n)
        for i, (_, pos) in enumerate(seen):
            visual = drops.get(i, visual)
            rows = torch.cat([torch.arange(lay.image_start), lay.image_start + visual,
                              torch.arange(lay.image_start + n, lay.seq_len)])
            want = lay.positions(rows).cpu()
            assert torch.equal(pos.reshape(want.shape), want)


def test_the_position_switch(glamm):
    """``positions="renumber"`` numbers the sequence 0..S'-1 after each drop (the first drop's layer sees the
    original positions); ``pad`` is refused, as for every method pruning inside the LLM."""
    pipe, prep = glamm
    lay = pipe.layout(prep, pipe.num_visual(prep))
    with torch.no_grad(), layer_inputs(pipe.language_model) as seen:
        out = pipe.ground(prep, "v2drop", 9, positions="renumber")
    assert out.position_rule == "renumber" and len(out.kept_indices) == 9
    assert torch.equal(seen[0][1].reshape(-1), lay.position_ids.cpu().reshape(-1))
    for length, pos in seen[1:]:
        assert torch.equal(pos.reshape(-1), torch.arange(length))
    with pytest.raises(LiteLVLMError, match="v2drop prunes inside the LLM"):
        pipe.ground(prep, "v2drop", 9, positions="pad")
