"""IPCV's Qwen2.5-VL variant against a statement-by-statement transcription of the official Qwen2-VL code, at
every budget.

Perkzi/IPCV @ 29726f044f0f9c0c2be4eb0005888ddeb5fa188e, ``Qwen2-VL/Qwen2VL_IPCV/modeling_qwen2_vl_IPCV.py``:

* L1139-1297 ``IPCV_ViT.forward`` (the frames' ``cu_seqlens`` L1142-1145, the pruning L1158-1246, the blocks'
  three paths L1252-1257, the rebuild after the last block L1262-1295);
* L393-437 ``Qwen2VLVisionBlock.forward`` (attention stabilisation: rebuild, attention, prune again, MLP);
* L1299-1315 ``get_retained_image_token_diff``.

The block's own modules are Qwen2.5-VL's (RMSNorm, SwiGLU; ``attn`` takes the rotary table as (cos, sin),
which the official ``rotary_pos_emb[keep_indexs, :]`` indexes row by row as here), taken from the random
``unipixel-tiny-random:0`` tower (4 blocks) on odd image sizes; the block-0 input and the rotary tables are
captured at block 0 in one ordinary forward of the tower, in its window order. Where every block attends per
image (the official Qwen2-VL architecture: ``fullatt_block_indexes`` all blocks) the variant is the official
code bit for bit; on the tower's own window blocks the mapping (each kept patch attends to the kept patches of
its window) is checked against an attention masked by each patch's window, computed apart.
"""

from __future__ import annotations

import copy
import functools

import pytest
import torch
import torch.nn.functional as F
from transformers.models.qwen2_5_vl.modeling_qwen2_5_vl import apply_rotary_pos_emb_vision
from transformers.vision_utils import get_vision_window_index

from litelvlm.errors import LiteLVLMError
from litelvlm.methods.ipcv import ipcv_run
from litelvlm.qwen_vision.tower import QwenTower, kept_bounds
from litelvlm.qwen_vision.vision import QwenVision
from tests.fixtures.images import noise_image

SIZES = [(97, 131), (45, 301)]


# -- the transcription ---------------------------------------------------------------------------------------
def official_block(blk, hidden_states_pkg, cu_seqlens, rotary_pos_emb, sparse_vit_saved=None, attend=None):
    """L393-437 (``attend``: the attention of a pruned window block, the mapping's reference)."""
    if sparse_vit_saved is not None:
        saved = sparse_vit_saved
        L, D = saved["orig_seq_len"], saved["removed_states"].size(1)
        device = hidden_states_pkg['hidden_states'].device
        new_kept = hidden_states_pkg['hidden_states']
        orig_kept = saved["orig_kept_states"]
        rem_to_kept_idx = saved["rem_to_kept_idx"]
        removed_indices = saved["removed_indices"]
        unique_idx = saved["unique_idx"]
        inv_idx = saved["inv_idx"]
        delta_unique = (new_kept[unique_idx] - orig_kept[unique_idx])
        inv_idx = inv_idx.view(rem_to_kept_idx.shape)
        avg_delta_removed = delta_unique[inv_idx].mean(dim=1)
        hidden_states = torch.zeros(L, D, device=device, dtype=new_kept.dtype)
        hidden_states[saved["keep_indexs"]] = new_kept
        hidden_states[removed_indices] = (saved["removed_states"] + avg_delta_removed)
    else:
        hidden_states = hidden_states_pkg['hidden_states']
    if attend is not None:
        output = attend(blk, blk.norm1(hidden_states), rotary_pos_emb)
    else:
        output = blk.attn(blk.norm1(hidden_states), cu_seqlens=cu_seqlens, position_embeddings=rotary_pos_emb)
    hidden_states = hidden_states + output
    if sparse_vit_saved is not None:
        hidden_states = hidden_states[saved["keep_indexs"]]
    hidden_states = hidden_states + blk.mlp(blk.norm2(hidden_states))
    return {'hidden_states': hidden_states}


def get_retained_image_token_diff(token_topk, hidden_states_prev, hidden_states_cur, last_layer_state):
    """L1299-1315 (``TOKEN_TOPK = int(image_token_length * (1 - reduction_ratio))`` given as the count)."""
    device = last_layer_state.device
    diff = hidden_states_cur - hidden_states_prev
    diff_norm = torch.norm(diff, dim=-1)
    top_k_indices = diff_norm.topk(token_topk).indices
    return top_k_indices.clone().to(device)


def official_ipcv(visual, hidden_states, rot, grid_thw, token_topk, K, AS_layer, Top_K, windows=None):
    """L1139-1297 from the block-0 input ``hidden_states`` and table ``rot`` (window order); ``windows``: the
    tower's window bounds and its full-attention blocks, for the mapping (None: every block per frame)."""
    cu_seqlens = torch.repeat_interleave(grid_thw[:, 1] * grid_thw[:, 2], grid_thw[:, 0]).cumsum(
        dim=0, dtype=torch.int32)
    cu_seqlens = F.pad(cu_seqlens, (1, 0), value=0)
    hidden_states_pkg = {'hidden_states': hidden_states}
    hidden_states_prev, saved = None, None
    for layer_idx, blk in enumerate(visual.blocks):
        window = windows is not None and layer_idx not in windows[1]
        cu_block = windows[0] if window else cu_seqlens
        if K - 1 > 0 and layer_idx == K - 1 and hidden_states_pkg['hidden_states'].shape[0] > 1:
            hidden_states_prev = hidden_states_pkg['hidden_states']
        if layer_idx == K and hidden_states_pkg['hidden_states'].shape[0] > 1:
            device = hidden_states_pkg['hidden_states'].device
            last_layer_state = hidden_states_pkg['hidden_states'].detach().clone()
            hidden_states_cur = hidden_states_pkg['hidden_states']
            retained = get_retained_image_token_diff(token_topk, hidden_states_cur, hidden_states_prev,
                                                     last_layer_state)
            keep_indexs = retained.sort().values
            orig_seq_len = hidden_states_pkg['hidden_states'].shape[0]
            orig_states = hidden_states_pkg['hidden_states'].detach().clone()
            removed_mask = torch.ones(orig_seq_len, dtype=torch.bool, device=device)
            removed_mask[keep_indexs] = False
            removed_indices = torch.nonzero(removed_mask, as_tuple=False).view(-1)
            removed_states = orig_states[removed_indices]
            orig_kept_states = orig_states[keep_indexs, :].clone()
            dists = torch.cdist(removed_states.float(), orig_kept_states.float(), p=2.0)
            _, rem_to_kept_idx = dists.topk(min(Top_K, orig_kept_states.shape[0]), largest=False, dim=1)
            flat_idx = rem_to_kept_idx.view(-1)
            unique_idx, inv_idx = torch.unique(flat_idx, return_inverse=True)
            hidden_states_pkg['hidden_states'] = orig_kept_states
            rotary_pos_emb_pruned = (rot[0][keep_indexs, :], rot[1][keep_indexs, :])
            saved = {"orig_seq_len": orig_seq_len, "keep_indexs": keep_indexs,
                     "removed_indices": removed_indices,
                     "removed_states": removed_states, "orig_kept_states": orig_kept_states,
                     "rem_to_kept_idx": rem_to_kept_idx, "unique_idx": unique_idx, "inv_idx": inv_idx}
            num_frames = len(cu_seqlens) - 1
            frame_indices = torch.searchsorted(cu_seqlens, keep_indexs, right=False) - 1
            frame_indices = frame_indices.clamp(min=0, max=num_frames - 1)
            frame_counts = torch.bincount(frame_indices, minlength=num_frames)
            new_cu_seqlens = torch.zeros(len(cu_seqlens), dtype=torch.int32, device=device)
            new_cu_seqlens[1:] = frame_counts.cumsum(dim=0)
            cu_seqlens_pruned = new_cu_seqlens.to(torch.int32)
        if saved is not None and layer_idx < K + AS_layer:
            hidden_states_pkg = official_block(blk, hidden_states_pkg, cu_block, rot, saved)
        elif saved is not None:
            attend = functools.partial(window_attention, windows[0], saved["keep_indexs"]) if window else None
            hidden_states_pkg = official_block(blk, hidden_states_pkg, cu_seqlens_pruned,
                                               rotary_pos_emb_pruned, attend=attend)
        else:
            hidden_states_pkg = official_block(blk, hidden_states_pkg, cu_block, rot)
        if layer_idx == len(visual.blocks) - 1 and saved is not None:
            L, D = saved["orig_seq_len"], saved["removed_states"].size(1)
            new_kept = hidden_states_pkg['hidden_states']
            delta_unique = (new_kept[saved["unique_idx"]] - saved["orig_kept_states"][saved["unique_idx"]])
            inv_idx = saved["inv_idx"].view(saved["rem_to_kept_idx"].shape)
            avg_delta_removed = delta_unique[inv_idx].mean(dim=1)
            full_states = torch.zeros(L, D, device=new_kept.device, dtype=new_kept.dtype)
            full_states[saved["keep_indexs"]] = new_kept
            full_states[saved["removed_indices"]] = (saved["removed_states"] + avg_delta_removed)
            hidden_states_pkg['hidden_states'] = full_states
    return hidden_states_pkg['hidden_states']


def window_attention(cu_window, keep, blk, x, rot):
    """The mapping's reference: the block's attention over the kept patches ``keep``, each attending to the
    kept patches of its own window (its window from the bounds' lengths, a mask, eager softmax)."""
    attn = blk.attn
    lengths = (cu_window[1:] - cu_window[:-1]).long()
    member = torch.repeat_interleave(torch.arange(len(cu_window) - 1), lengths)
    member = member[keep]
    s = x.shape[0]
    q, k, v = attn.qkv(x).reshape(s, 3, attn.num_heads, -1).permute(1, 0, 2, 3).unbind(0)
    q, k = apply_rotary_pos_emb_vision(q, k, *rot)
    q, k, v = (t.transpose(0, 1) for t in (q, k, v))
    scores = torch.matmul(q, k.transpose(1, 2)) * attn.scaling
    scores = scores.masked_fill(member[None, :, None] != member[None, None, :], float("-inf"))
    out = torch.matmul(torch.softmax(scores.float(), dim=-1).to(q.dtype), v)
    return attn.proj(out.transpose(0, 1).reshape(s, -1))


# -- fixtures ------------------------------------------------------------------------------------------------
_LOADED: list = []


@pytest.fixture(scope="module", autouse=True)
def _loaded(tiny_unipixel_pipe):
    """The shared tiny UniPixel (``unipixel-tiny-random:0``) for the cached cases below."""
    _LOADED[:] = [tiny_unipixel_pipe]


def _pipe():
    return _LOADED[0]


@functools.cache
def _case(size: tuple[int, int], all_full: bool):
    """(the tower's :class:`QwenVision` of a noise image of ``size`` (every block attending per image with
    ``all_full``), its block-0 input and rotary table in window order, the window bounds)."""
    p = _pipe()
    v = p.vision(p.prepare_image(noise_image(*size, seed=sum(size))))
    visual = v.visual
    if all_full:
        visual = copy.deepcopy(visual)
        visual.fullatt_block_indexes = list(range(len(visual.blocks)))
    seen = {}
    hook = visual.blocks[0].register_forward_pre_hook(
        lambda m, a, kw: seen.update(x=a[0] if a else kw["hidden_states"], rot=kw["position_embeddings"]),
        with_kwargs=True)
    try:
        with torch.no_grad():
            out = visual(v.pixel_values, grid_thw=v.grid_thw).pooler_output
    finally:
        hook.remove()
    window_index, cu_window = get_vision_window_index(
        v.grid_thw, spatial_merge_size=visual.spatial_merge_size, window_size=visual.window_size,
        patch_size=visual.patch_size)
    vision = QwenVision(visual, v.pixel_values, v.grid_thw)
    return vision, seen["x"], seen["rot"], window_index, cu_window, out


@torch.no_grad()
def _official(size, budget, layer, as_layers, all_full, top_k=10):
    vision, x, rot, window_index, cu_window, _ = _case(size, all_full)
    visual = vision.visual
    p, n = x.shape[0], x.shape[0] // 4
    ratio = 1 - budget / n
    assert int(p * (1 - ratio)) in (4 * budget, 4 * budget - 1)  # the official count, exact here: 4K
    windows = None if all_full else (cu_window, set(visual.fullatt_block_indexes))
    states = official_ipcv(visual, x, rot, vision.grid_thw, 4 * budget, layer, as_layers, top_k, windows)
    return visual.merger(states)[torch.argsort(window_index)]


def _ours(size, budget, layer, as_layers, all_full, top_k=10):
    vision = _case(size, all_full)[0]
    return ipcv_run(QwenTower(vision), 4 * budget, layer, as_layers, top_k)


# -- tests ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("size", SIZES[:1])
def test_unpruned_run_is_the_towers_own(size):
    """With every patch kept the stage's block-by-block run is the tower's own forward (window blocks
    included)."""
    vision, *_, out = _case(size, all_full=False)
    n = out.shape[0]
    assert torch.allclose(_ours(size, n, 2, 1, all_full=False), out, atol=1e-5)


def _budgets(n: int, every: bool) -> list[int]:
    return list(range(1, n + 1)) if every else sorted({1, 2, n // 3, (n * 35) // 100, n - 1, n})


def _check_official_architecture(size, every: bool) -> None:
    n = _case(size, True)[1].shape[0] // 4
    for layer, as_layers in ((3, 7), (2, 1), (2, 0)):
        for budget in _budgets(n, every):
            expected = _official(size, budget, layer, as_layers, all_full=True)
            got = _ours(size, budget, layer, as_layers, all_full=True)
            assert torch.equal(got, expected), (size, layer, as_layers, budget)


@pytest.mark.parametrize("size", SIZES[:1])
def test_official_architecture_matches_the_official_code(size):
    """Every block attending per image: the official code bit for bit at the official settings (layer 3, AS 7)
    and with the pruned blocks reached (layer 2, AS 1 and 0), at the edges and the paper's ratio 0.65."""
    _check_official_architecture(size, every=False)


@pytest.mark.slow
@pytest.mark.parametrize("size", SIZES)
def test_official_architecture_every_budget(size):
    """The same at every budget 1..N, odd sizes."""
    _check_official_architecture(size, every=True)


def _check_windows(size, every: bool) -> None:
    n = _case(size, False)[1].shape[0] // 4
    for layer, as_layers in ((3, 7), (2, 0)):
        for budget in _budgets(n, every):
            expected = _official(size, budget, layer, as_layers, all_full=False)
            got = _ours(size, budget, layer, as_layers, all_full=False)
            assert torch.allclose(got, expected, atol=1e-5), (size, layer, as_layers, budget)


@pytest.mark.parametrize("size", SIZES[:1])
def test_window_blocks_attend_within_their_windows(size):
    """The tower's own window blocks (0 and 2): the AS blocks attend per window over the rebuilt sequence, and
    a pruned window block's kept patches attend to the kept patches of their windows alone."""
    _check_windows(size, every=False)


@pytest.mark.slow
@pytest.mark.parametrize("size", SIZES)
def test_window_blocks_every_budget(size):
    """The same at every budget 1..N, odd sizes."""
    _check_windows(size, every=True)


def test_kept_bounds():
    """Frames recounted as the official code counts them (a kept first token of a frame in the frame before),
    windows exactly; empty segments dropped."""
    cu = torch.tensor([0, 4, 8, 12])
    rows = torch.tensor([0, 4, 5, 11])
    assert kept_bounds(cu, rows, official=True).tolist() == [0, 2, 3, 4]
    assert kept_bounds(cu, rows, official=False).tolist() == [0, 1, 3, 4]
    assert kept_bounds(cu, torch.tensor([9, 10]), official=False).tolist() == [0, 2]


def test_layers_below_2_are_refused_and_past_the_tower_prune_nothing():
    """The official code reads no earlier state below layer 2 (it fails), and no block reaches a layer at or
    past the tower's depth (the tower's own output)."""
    vision, *_, out = _case(SIZES[0], False)
    for layer in (0, 1):
        with pytest.raises(LiteLVLMError, match="pruning layer"):
            ipcv_run(QwenTower(vision), 4, layer, 1, 10)
    got = ipcv_run(QwenTower(vision), 4, len(vision.visual.blocks), 1, 10)
    assert torch.allclose(got, out, atol=1e-5)


def test_ground_runs_ipcv_and_keeps_every_token():
    """Through the pipeline: the LLM receives all N tokens; at K = N the masks are the unpruned run's."""
    p = _pipe()
    prep = p.prepare(noise_image(*SIZES[0], seed=3), ["the cup"])
    n = p.num_visual(prep)
    full = p.ground(prep, "none")
    same = p.ground(prep, "ipcv", n)
    assert torch.allclose(same.masks.float(), full.masks.float(), atol=1e-4)
    small = p.ground(prep, "ipcv", 3)
    assert small.seq_len == full.seq_len
    assert p.method_error("flowcut") is not None


@pytest.mark.parametrize("method,llm", [("ipcv+fastv", "fastv"), ("ipcv+dart", "dart")])
def test_compositions_are_the_llm_method_on_ipcvs_tokens(method, llm):
    """IPCV + FastV / DART: the LLM-side method on the N tokens IPCV's tower gives back at the same K (LLM
    layer 2: the tiny LLM has 2 layers, below the IPCV scripts' 3, which it refuses)."""
    from litelvlm.methods.ipcv_qwen import ipcv_qwen_tokens

    p = _pipe()
    prep = p.prepare(noise_image(*SIZES[0], seed=3), ["the cup"])
    budget = 5
    tokens = ipcv_qwen_tokens(p.tower_context(prep), budget)
    with pytest.raises(LiteLVLMError, match="layer K must be in 1..2; got 3"):
        p.ground(prep, method, budget)
    got = p.ground(prep, method, budget, layer=2)
    expected = p.ground(prep, llm, budget, visual_embeds=tokens, layer=2)
    assert torch.equal(got.masks, expected.masks) and got.seq_len == expected.seq_len
    with pytest.raises(LiteLVLMError, match="vision tower"):
        p.ground(prep, method, budget, visual_embeds=tokens, layer=2)
