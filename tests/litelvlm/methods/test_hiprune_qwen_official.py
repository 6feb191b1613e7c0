"""HiPrune's Qwen2.5-VL variant against a statement-by-statement transcription of its official code, at every
budget.

Danielement321/HiPrune @ 6e83a12, ``Qwen2_5_VL/qwen2_5_vl_HiPrune.py`` (``bench_qwen.sh``: flash attention,
``HIPRUNE_QWEN_RETENTION`` 0.223, ``HIPRUNE_ALPHA`` 0.1, ``HIPRUNE_OBJECT_LAYER`` 16):

* L152-159 / L169-213: the flash-attention class's weights, over every patch of the sequence (L201-211); the
  rotary kernel (``flash_attn``'s ``apply_rotary_emb``, not installable here) is replaced by the same rotation
  of L223-234, the eager class's (float32, cast back);
* L216-234 / L245-287: the eager class's weights (the block's ``cu_seqlens`` mask, softmax in float32 cast
back);
* L477-516 (``get_window_index``), L548-558 (``cu_seqlens``, ``reverse_indices``), L560-577 (the blocks' loop:
  which blocks attend fully, the reduction of each block's weights to one score per merged token);
* L1854-1896: the selection (the projector's features, L1786, are UniPixel's merged tokens as they are).

The tower is the random ``unipixel-tiny-random:0`` one (4 blocks, full attention in blocks 1 and 3, 112-px
windows) on odd image sizes through UniPixel's protocol; the input of each block (its hidden states and RoPE
cos/sin) is taken at the block during one forward of transformers 5's tower, whose ``rot_pos_emb`` and window
permutation were rewritten since 4.52 (the window order and ``cu_seqlens`` are recomputed here by the official
statements and checked against what the blocks receive).
"""

from __future__ import annotations

import functools
import math
import os

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from litelvlm.errors import LiteLVLMError
from tests.fixtures.images import noise_image as _noise
from tests.pinned_scripts.official_qwen_rules import apply_rotary_pos_emb_vision  # L216-234

MODEL = "unipixel-tiny-random:0"
SIZES = [(97, 131), (301, 45), (45, 301)]


# -- the transcription ---------------------------------------------------------------------------------------
def official_weights(self, hidden_states, cu_seqlens, position_embeddings, impl: str):
    """The attention weights a block's attention returns: eager L251-286, flash L175-211 (its attention output
    is not needed here; the rotary kernel of L152-159 replaced by L223-234)."""
    seq_length = hidden_states.shape[0]
    q, k, v = self.qkv(hidden_states).reshape(seq_length, 3, self.num_heads, -1).permute(1, 0, 2, 3).unbind(0)
    cos, sin = position_embeddings
    if impl == "flash":
        q, k = apply_rotary_pos_emb_vision(q.unsqueeze(0), k.unsqueeze(0), cos, sin)
        q = q.squeeze(0)
        k = k.squeeze(0)
        q = q.permute(1, 0, 2)  # [H, T, D]
        k = k.permute(1, 0, 2)  # [H, T, D]
        attn_logits = torch.matmul(q, k.transpose(-1, -2))
        attn_logits = attn_logits / (q.shape[-1] ** 0.5)
        attn_logits = F.softmax(attn_logits, dim=-1)
        return attn_logits
    q, k = apply_rotary_pos_emb_vision(q, k, cos, sin)
    attention_mask = torch.full(
        [1, seq_length, seq_length], torch.finfo(q.dtype).min, device=q.device, dtype=q.dtype
    )
    for i in range(1, len(cu_seqlens)):
        attention_mask[..., cu_seqlens[i - 1]: cu_seqlens[i], cu_seqlens[i - 1]: cu_seqlens[i]] = 0
    q = q.transpose(0, 1)
    k = k.transpose(0, 1)
    head_dim = q.shape[-1]  # self.head_dim = dim // num_heads
    attn_weights = torch.matmul(q, k.transpose(1, 2)) / math.sqrt(head_dim)
    attn_weights = attn_weights + attention_mask
    attn_weights = nn.functional.softmax(attn_weights, dim=-1, dtype=torch.float32).to(q.dtype)
    return attn_weights


def get_window_index(self, grid_thw):
    """L477-516."""
    window_index: list = []
    cu_window_seqlens: list = [0]
    window_index_id = 0
    vit_merger_window_size = self.window_size // self.spatial_merge_size // self.patch_size

    for grid_t, grid_h, grid_w in grid_thw:
        llm_grid_h, llm_grid_w = (
            grid_h // self.spatial_merge_size,
            grid_w // self.spatial_merge_size,
        )
        index = torch.arange(grid_t * llm_grid_h * llm_grid_w).reshape(grid_t, llm_grid_h, llm_grid_w)
        pad_h = vit_merger_window_size - llm_grid_h % vit_merger_window_size
        pad_w = vit_merger_window_size - llm_grid_w % vit_merger_window_size
        num_windows_h = (llm_grid_h + pad_h) // vit_merger_window_size
        num_windows_w = (llm_grid_w + pad_w) // vit_merger_window_size
        index_padded = F.pad(index, (0, pad_w, 0, pad_h), "constant", -100)
        index_padded = index_padded.reshape(
            grid_t,
            num_windows_h,
            vit_merger_window_size,
            num_windows_w,
            vit_merger_window_size,
        )
        index_padded = index_padded.permute(0, 1, 3, 2, 4).reshape(
            grid_t,
            num_windows_h * num_windows_w,
            vit_merger_window_size,
            vit_merger_window_size,
        )
        seqlens = (index_padded != -100).sum([2, 3]).reshape(-1)
        index_padded = index_padded.reshape(-1)
        index_new = index_padded[index_padded != -100]
        window_index.append(index_new + window_index_id)
        cu_seqlens_tmp = seqlens.cumsum(0) * self.spatial_merge_unit + cu_window_seqlens[-1]
        cu_window_seqlens.extend(cu_seqlens_tmp.tolist())
        window_index_id += (grid_t * llm_grid_h * llm_grid_w).item()
    window_index = torch.cat(window_index, dim=0)

    return window_index, cu_window_seqlens


def official_attn_list(self, pixel_values, grid_thw, impl: str = "flash"):
    """The tower's ``attn_list`` (L531-577): each block's weights on the block's input, reduced per merged
    token."""
    inputs: dict[int, dict] = {}
    handles = [blk.register_forward_pre_hook(lambda m, a, kw, b=b: inputs.update({b: dict(h=a[0], **kw)}),
                                             with_kwargs=True) for b, blk in enumerate(self.blocks)]
    try:
        self(pixel_values, grid_thw=grid_thw)
    finally:
        for h in handles:
            h.remove()
    self.spatial_merge_unit = self.spatial_merge_size * self.spatial_merge_size
    window_index, cu_window_seqlens = get_window_index(self, grid_thw)
    cu_window_seqlens = torch.tensor(cu_window_seqlens, device=pixel_values.device, dtype=torch.int32)
    cu_window_seqlens = torch.unique_consecutive(cu_window_seqlens)
    cu_seqlens = torch.repeat_interleave(grid_thw[:, 1] * grid_thw[:, 2], grid_thw[:, 0]).cumsum(
        dim=0, dtype=torch.int32)
    cu_seqlens = F.pad(cu_seqlens, (1, 0), value=0)
    reverse_indices = torch.argsort(window_index)
    attn_list = []
    for layer_num, blk in enumerate(self.blocks):
        if layer_num in self.fullatt_block_indexes:
            cu_seqlens_now = cu_seqlens
        else:
            cu_seqlens_now = cu_window_seqlens
        seen = inputs[layer_num]
        # what transformers 5's block receives
        assert torch.equal(seen["cu_seqlens"].cpu(), cu_seqlens_now.cpu())
        attn_weights = official_weights(blk.attn, blk.norm1(seen["h"]), cu_seqlens_now,
                                        seen["position_embeddings"], impl)
        with torch.no_grad():
            attn_weights = attn_weights.mean(dim=0)
            attn_weights = attn_weights.sum(dim=0)
            attn_weights = attn_weights.view(attn_weights.shape[0] // 4, -1).mean(dim=-1)
            attn_weights = attn_weights[reverse_indices]
        attn_list.append(attn_weights)
    return attn_list


def official_hiprune(attn_list, image_grid_thw, n_image_tokens: int, retention: float, alpha: float,
                     object_layer: int, spatial_merge_size: int = 2) -> torch.Tensor:
    """L1854-1896 (B = 1; ``attn_list`` as the tower returns it): the visual tokens the LLM keeps
    (``img_mask`` over the image's rows), in the sequence's order. The environment variables are the module's
    constants (L47-49)."""
    os.environ["HIPRUNE_OBJECT_LAYER"], os.environ["HIPRUNE_ALPHA"] = str(object_layer), str(alpha)
    os.environ["HIPRUNE_QWEN_RETENTION"] = str(retention)
    OBJECT_LAYER = int(os.environ['HIPRUNE_OBJECT_LAYER'])
    ALPHA = float(os.environ['HIPRUNE_ALPHA'])
    RETAIN = float(os.environ['HIPRUNE_QWEN_RETENTION'])
    n_image_features = n_image_tokens
    shallow_attention = attn_list[OBJECT_LAYER - 1]
    deep_attention = attn_list[-1].clone()

    select_mask = torch.zeros_like(deep_attention, dtype=torch.bool)
    visual_token_num = round(n_image_tokens * RETAIN)
    shallow_token_num = round((visual_token_num * ALPHA) / 5)

    shallow_token_indices = torch.topk(shallow_attention, k=shallow_token_num).indices
    width = int(image_grid_thw[0][2] / spatial_merge_size)
    shallow_token_indices = torch.cat([shallow_token_indices,
                                       shallow_token_indices - 1,
                                       shallow_token_indices + 1,
                                       shallow_token_indices - width,
                                       shallow_token_indices + width])
    shallow_token_indices = shallow_token_indices.clamp(0, n_image_tokens - 1)
    shallow_token_indices = torch.unique(shallow_token_indices, sorted=False)

    deep_token_num = visual_token_num - shallow_token_indices.shape[0]
    available_index_mask = torch.zeros(n_image_features, dtype=torch.bool, device=deep_attention.device)
    available_index_mask.scatter_(0, shallow_token_indices, 1)

    deep_attention -= available_index_mask.int()

    deep_token_indices = torch.topk(deep_attention, k=deep_token_num).indices
    retain = torch.cat([shallow_token_indices, deep_token_indices])
    select_mask[retain] = True
    # img_mask[first:last+1] = select_mask: the kept rows, in order
    return torch.nonzero(select_mask).flatten()


# -- fixtures ------------------------------------------------------------------------------------------------
@functools.cache
def _pipe(dtype: torch.dtype):
    from litelvlm.registry.families import load_pipeline

    return load_pipeline(MODEL, dtype=dtype)


@functools.cache
def _prep(dtype: torch.dtype, size: tuple[int, int]):
    return _pipe(dtype).prepare(_noise(*size, seed=sum(size)), ["the cup"])


@functools.cache
def _case(dtype: torch.dtype, size: tuple[int, int], impl: str = "flash"):
    """(pipeline, prepared input, the official attn_list) of a noise image of ``size``."""
    p, prep = _pipe(dtype), _prep(dtype, size)
    v = p.vision(prep)
    with torch.no_grad():
        attn = official_attn_list(v.visual, v.pixel_values, v.grid_thw, impl)
    return p, prep, attn


def _official(attn, prep, budget: int, n: int, alpha: float = 0.1, object_layer: int = 2) -> torch.Tensor:
    retention = budget / n
    assert round(n * retention) == budget
    return official_hiprune(attn, prep.grid_thw, n, retention, alpha, object_layer)


def _check_budget(p, prep, attn, budget: int, **options) -> None:
    """The variant through the pipeline's context equals the official code, fewer than K tokens included
    (marked ``short``), or is refused where that one crashes; where it keeps fewer than K,
    ``registers="refuse"`` refuses and ``registers="fill"`` keeps K, the official tokens among them."""
    n = p.num_visual(prep)
    layer = options.get("object_layer", 2)
    try:
        expected = _official(attn, prep, budget, n, options.get("alpha", 0.1), layer)
    except RuntimeError:  # topk with a negative k: more anchors and buffers than K
        with pytest.raises(LiteLVLMError, match="crashes"):
            p.spec("hiprune").select(p.context(prep), budget, **options)
        return
    ctx = p.context(prep)
    got = p.spec("hiprune").select(ctx, budget, **options)
    assert got.indices.tolist() == expected.tolist() and got.short == (len(expected) < budget), budget
    if len(expected) == budget:
        return
    with pytest.raises(LiteLVLMError, match="registers='fill'"):
        p.spec("hiprune").select(ctx, budget, registers="refuse", **options)
    filled = p.spec("hiprune").select(ctx, budget, registers="fill", **options).indices
    assert len(filled) == budget and set(expected.tolist()) <= set(filled.tolist())


# -- tests ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=["fp32", "bf16"])
def test_every_budget_matches_the_official_code(dtype):
    """K = 1..N at the official alpha 0.1 (object layer 2 of the tiny 4-block tower: 16 of 32, a
    full-attention block; registers from the last block), flash attention: the block scores are the official
    ones bit for bit, and the kept tokens are the same, in the same (LLM) order, at every budget; a few
    budgets through the pipeline."""
    from litelvlm.methods.hiprune_qwen import block_scores, select_tokens

    p, prep, attn = _case(dtype, (97, 131))
    n = p.num_visual(prep)
    v = p.vision(prep)
    ours = block_scores(v, [1, 3])
    assert ours[1].dtype == dtype and torch.equal(ours[1], attn[1]) and torch.equal(ours[3], attn[3])
    width = v.grids()[0].llm_w
    assert width == int(prep.grid_thw[0][2] / 2)
    for budget in range(1, n + 1):
        expected = _official(attn, prep, budget, n)
        assert len(expected) == budget
        assert select_tokens(ours[1], ours[3], budget, width).indices.tolist() == expected.tolist(), budget
    for budget in (1, 31, n):
        _check_budget(p, prep, attn, budget)


@pytest.mark.parametrize("dtype", [torch.float32, pytest.param(torch.bfloat16, marks=pytest.mark.slow)],
                         ids=["fp32", "bf16"])
def test_eager_attention_and_a_window_block_match_the_official_code(dtype):
    """``attention="eager"``: the eager class's weights, a window block's masked to its windows (object layer
    1: block 0 of the tiny tower attends per 112-px window; the 10 x 14 merged tokens span 3 x 4 windows)."""
    from litelvlm.methods.hiprune_qwen import block_scores, select_tokens

    p, prep, attn = _case(dtype, (97, 131), "eager")
    n = p.num_visual(prep)
    v = p.vision(prep)
    ours = block_scores(v, [0, 3], "eager")
    assert torch.equal(ours[0], attn[0]) and torch.equal(ours[3], attn[3])
    flash = block_scores(v, [0], "flash")[0]
    assert not torch.equal(flash, ours[0])  # the flash weights ignore the windows
    for budget in range(1, n + 1):
        expected = _official(attn, prep, budget, n, alpha=0.5, object_layer=1)
        got = select_tokens(ours[0], ours[3], budget, v.grids()[0].llm_w, alpha=0.5)
        assert got.indices.tolist() == expected.tolist(), budget
    _check_budget(p, prep, attn, 40, attention="eager", object_layer=1, alpha=0.5)


@pytest.mark.parametrize("alpha", [0.3, 1.0])
def test_other_alphas_short_budgets_and_crashes_follow_the_official_code(alpha):
    """Large alphas at every budget: where the anchors and buffers outnumber K the official top-k crashes
    (refused here); elsewhere the same tokens in the same order."""
    from litelvlm.methods.hiprune_qwen import select_tokens

    p, prep, attn = _case(torch.float32, (97, 131))
    n = p.num_visual(prep)
    width = int(prep.grid_thw[0][2] / 2)
    crashed = 0
    for budget in range(1, n + 1):
        try:
            expected = _official(attn, prep, budget, n, alpha=alpha)
        except RuntimeError:
            crashed += 1
            with pytest.raises(LiteLVLMError, match="crashes"):
                select_tokens(attn[1], attn[3], budget, width, alpha=alpha)
            continue
        assert select_tokens(attn[1], attn[3], budget, width,
                             alpha=alpha).indices.tolist() == expected.tolist()
    assert (crashed > 0) == (alpha == 1.0)


def test_where_the_official_registers_repeat_an_anchor():
    """The last block's score is a sum over query patches, so minus 1 need not exclude an anchor: on scores
    where an anchor is also the strongest register the official code keeps K - 1 tokens, and so does the
    default (marked ``short``); ``registers="refuse"`` refuses the call, ``registers="fill"`` keeps K: the
    official tokens and the next register."""
    from litelvlm.methods.hiprune_qwen import select_tokens

    n, width, budget = 30, 6, 26  # round(26 * 0.1 / 5) = 1 anchor
    grid = torch.Generator().manual_seed(0)
    shallow, deep = torch.rand(n, generator=grid), torch.rand(n, generator=grid) + 0.5
    shallow[14], deep[14] = 5.0, 9.0  # token 14 is the anchor and would be the strongest register
    expected = official_hiprune([shallow, deep], torch.tensor([[1, 2 * n // width, 2 * width]]), n,
                                budget / n, 0.1, 1)
    assert len(expected) == budget - 1 and 14 in expected.tolist()
    default = select_tokens(shallow, deep, budget, width)
    assert default.indices.tolist() == expected.tolist() and default.short and len(default) == budget - 1
    with pytest.raises(LiteLVLMError, match="keeps 25 tokens"):
        select_tokens(shallow, deep, budget, width, registers="refuse")
    filled = select_tokens(shallow, deep, budget, width, registers="fill")
    extra = sorted(set(filled.indices.tolist()) - set(expected.tolist()))
    rest = [i for i in range(n) if i not in expected.tolist()]
    assert len(filled) == budget and len(extra) == 1 and extra[0] == max(rest, key=lambda i: float(deep[i]))
    deep[14] = 0.5  # no repeat: fill is the official selection
    same = official_hiprune([shallow, deep], torch.tensor([[1, 10, 12]]), n, budget / n, 0.1, 1)
    assert select_tokens(shallow, deep, budget, width, registers="fill").indices.tolist() == same.tolist()


def test_the_variant_runs_through_ground_with_the_kept_tokens_at_their_positions():
    """``hiprune`` is no longer refused on UniPixel; ``ground`` feeds the kept merged tokens as they are, with
    their original 3-D M-RoPE positions (the official ``position_ids[:, :, img_mask]``); the default object
    layer keeps its relative depth; the ranking score is the last block's."""
    from litelvlm.methods.hiprune_qwen import default_object_layer
    from litelvlm.unipixel.pipeline import UniPixelPipeline

    assert UniPixelPipeline.method_error(UniPixelPipeline, "hiprune") is None
    assert default_object_layer(32) == 16 and default_object_layer(4) == 2 and default_object_layer(1) == 1
    p, prep, attn = _case(torch.float32, (97, 131))
    spec = p.spec("hiprune")
    assert (spec.backbone == "qwen2.5-vl" and spec.stage.name == "llm-input" and spec.ranks and spec.positions
            == "keep")
    seen = []
    original = p.sequence_embeds
    p.sequence_embeds = lambda prepared, visual: seen.append(visual) or original(prepared, visual)
    try:
        out = p.ground(prep, "hiprune", 40)
    finally:
        del p.sequence_embeds
    expected = _official(attn, prep, 40, p.num_visual(prep))
    # the official image_embeds[select_mask]: unmodified tokens
    assert torch.equal(seen[0], prep.visual[expected])
    parts = out.selection.parts  # index sets (what retention labels the kept tokens by)
    assert set(parts) == {"anchors_and_buffers", "registers"}
    assert sorted(set(torch.cat(list(parts.values())).tolist())) == out.kept_indices.tolist()
    assert out.kept_indices.tolist() == expected.tolist() and out.position_rule == "keep"
    assert out.masks.shape[0] == 1 and out.seq_len == p.layout(prep, p.num_visual(prep)).seq_len - (
        p.num_visual(prep) - 40)
    sel = spec.select(p.context(prep), p.num_visual(prep))
    assert torch.equal(sel.scores, attn[-1]) and len(sel) == p.num_visual(prep)
    with pytest.raises(LiteLVLMError, match="object_layer"):
        spec.select(p.context(prep), 8, object_layer=5)
    with pytest.raises(LiteLVLMError, match="attention"):
        spec.select(p.context(prep), 8, attention="sdpa")


@pytest.mark.slow
@pytest.mark.parametrize(("dtype", "size", "impl"), [(d, s, "flash") for d in (torch.float32, torch.bfloat16)
                                                     for s in SIZES] + [(d, (301, 45), "eager") for d in
                                                                        (torch.float32, torch.bfloat16)])
def test_every_budget_through_the_pipeline_on_odd_sizes(dtype, size, impl):
    """K = 1..N end to end (the pipeline's context, the tower re-run per call) on several odd sizes."""
    p, prep, attn = _case(dtype, size, impl)
    for budget in range(1, p.num_visual(prep) + 1):
        _check_budget(p, prep, attn, budget, attention=impl)


def test_fewer_than_k_through_ground_as_the_official_code_keeps_them(monkeypatch):
    """Where the official registers repeat an anchor (designed block scores), ``ground`` runs on the K - 1
    tokens the official code keeps and records the count (``short_kept``: a grounding row's ``kept`` column);
    the refusal stays as ``registers="refuse"``; a full selection records nothing (tables of other runs keep
    their columns)."""
    import litelvlm.methods.hiprune_qwen as hiprune

    p, prep, attn = _case(torch.float32, (97, 131))
    n, budget = p.num_visual(prep), 60  # round(60 * 0.1 / 5) = 1 anchor
    gen = torch.Generator().manual_seed(0)
    shallow, deep = torch.rand(n, generator=gen), torch.rand(n, generator=gen) + 0.5
    shallow[50], deep[50] = 5.0, 9.0  # token 50: the anchor, and the strongest register too
    monkeypatch.setattr(hiprune, "block_scores", lambda vision, blocks,
                        attention="flash": {1: shallow, 3: deep})
    expected = official_hiprune([shallow, deep], prep.grid_thw, n, budget / n, 0.1, 1)
    assert len(expected) == budget - 1
    out = p.ground(prep, "hiprune", budget)
    assert out.kept_indices.tolist() == expected.tolist() and out.short_kept() == {"kept": budget - 1}
    assert out.seq_len == p.layout(prep, n).seq_len - (n - budget + 1)
    with pytest.raises(LiteLVLMError, match="keeps 59 tokens"):
        p.ground(prep, "hiprune", budget, registers="refuse")
    assert p.ground(prep, "hiprune", budget, registers="fill").short_kept() == {}


def test_eval_grounding_records_the_kept_count_on_the_rows_that_keep_fewer(monkeypatch, coco128, tmp_path):
    """``eval-grounding``: the rows where the official registers repeat an anchor carry ``kept`` (K - 1), the
    others none (NaN: the budget); a run where it never happens has no ``kept`` column
    (``test_every_budget_...``)."""
    import pandas as pd

    import litelvlm.methods.hiprune_qwen as hiprune
    from litelvlm.cli import main

    real = hiprune.block_scores

    def designed(vision, blocks, attention="flash"):  # token 50: the anchor, and the strongest register too
        scores = real(vision, blocks, attention)
        for b, bump in zip(sorted(scores), (5.0, 9.0)):
            scores[b][50] = scores[b].max() + bump
        return scores

    monkeypatch.setattr(hiprune, "block_scores", designed)
    out = tmp_path / "out"
    assert main(
        ["eval-grounding", "--model", "unipixel-tiny-random:5", "--refer-dir", str(coco128), "--limit-images",
                 "1", "--methods", "hiprune,random", "--budgets", "60", "--n-boot", "10", "--threads", "1",
                 "--out", str(out)]) == 0
    rows = pd.read_parquet(out / "grounding.parquet")
    assert (rows.loc[rows["method"] == "hiprune", "kept"] == 59).all()
    assert rows.loc[rows["method"] != "hiprune", "kept"].isna().all()
