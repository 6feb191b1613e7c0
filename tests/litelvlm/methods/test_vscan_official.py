"""VScan against a statement-by-statement transcription of its official LLaVA-1.5 code.

Tencent/SelfEvolvingAgent @ a82450e1b5e15070bee79ee8b79f8d9a97cb85f7, folder ``VScan/``:

* ``llava/model/multimodal_encoder/clip_encoder.py`` L38-44, L75-77 (``feature_select``, ``forward``): every
  block's attention (``output_attentions=True``), stacked, [CLS] row, patch columns, in the tower's dtype.
  The attentions themselves are transformers 4.x's eager ``CLIPAttention`` statements
  (``test_official_vispruner_visionzip.official_clip_attention``).
* ``llava/model/llava_arch.py`` L142-197 (``token_merging``), L199-252 (``window_cls_selection``), L254-293
  (``encode_images``) and L589-594 (the LLM input: ``image_feature[index_mask]``).
* ``llava/model/modeling_llama_x.py`` L126-160 (``LlamaRotaryEmbedding``), L207-240 (``rotate_half``,
  ``apply_rotary_pos_emb``), L1186-1295 (``forward_x``'s decoder loop, prefill) and L1320-1509
  (``layer_prune``, right padding, inference, B = 1).
* ``llava/eval/model_vqa_loader.py`` L113-115 and ``scripts/llava1_5/*.sh``: ``layer_list [16]``,
  ``image_token_list [32]`` with ``visual_token_num 96`` inserted first.

The official decoder layers are transformers 4.37's; here the reference loop runs the model's own layers
(as the other in-LLM transcriptions do), with the causal mask of the current length and positions
``0..S'-1``. Where the official code hard-codes LLaVA's 24x24 grid, 24-block tower or 32-layer LLM, the
transcription takes the value as an argument (marked ``# argument``) for the adaptations tested here.
"""

from __future__ import annotations

import functools
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from litelvlm.clip.traces import VisionTrace
from litelvlm.methods import vscan
from litelvlm.pruning import SelectorInputs
from tests.fixtures.once import computed_once
from tests.litelvlm.methods.test_vispruner_visionzip_official import official_clip_attention

VSCAN_COMMIT = "a82450e1b5e15070bee79ee8b79f8d9a97cb85f7"
SENTENCES = ["the dog on the left", "a red cup"]


# ----------------------------------------------------------------------------------------------
# Official code, transcribed
# ----------------------------------------------------------------------------------------------

def feature_select_attentions(attentions):
    """clip_encoder.py L40-44 (``select_feature == 'patch'``) and L77 (``.to(images.dtype)``, the same
    dtype)."""
    image_attentions = torch.stack(attentions, dim=0)
    image_attentions = image_attentions[:, :, :, 0, 1:]
    return image_attentions


def official_token_merging(image_features, index_mask, scaling=1):
    """llava_arch.py L142-197."""
    B, N, D = image_features.shape
    T = index_mask.sum(dim=1)
    merged_features = []
    retained_tokens = []
    non_retained_tokens = []
    for b in range(B):
        retained_tokens.append(image_features[b][index_mask[b]])
        non_retained_tokens.append(image_features[b][~index_mask[b]])
    retained_tokens = torch.stack(retained_tokens, dim=0)
    non_retained_tokens = torch.stack(non_retained_tokens, dim=0)
    if non_retained_tokens.shape[1] == 0:
        return image_features
    cosine_sim = F.cosine_similarity(non_retained_tokens.unsqueeze(2), retained_tokens.unsqueeze(1), dim=3)
    nearest_token_indices = cosine_sim.argmax(dim=2)
    merge_count = torch.zeros(B, T[0], device=image_features.device, dtype=torch.int)
    merged_features = torch.zeros_like(retained_tokens)
    merged_features += retained_tokens * scaling
    expanded_indices = nearest_token_indices
    merged_features.scatter_add_(1, nearest_token_indices.unsqueeze(-1).expand(-1, -1, D),
                                 non_retained_tokens)
    merge_count.scatter_add_(1, expanded_indices, torch.ones_like(expanded_indices, dtype=merge_count.dtype))
    merged_features /= (scaling + merge_count.unsqueeze(2))
    for b in range(B):
        image_features[b, index_mask[b]] = merged_features[b]
    return image_features


def official_window_cls_selection(image_attentions, visual_token_num, window_size=6, grid=(24, 24)):
    """llava_arch.py L199-252; ``grid`` (official: 24, 24 and ``assert N == 24 * 24``) is an argument."""
    B, N = image_attentions.shape
    H, W = grid  # argument
    assert N == H * W, "image_attentions must be of shape (B, 576)"
    attn_map = image_attentions.view(B, H, W)
    num_windows_h = H // window_size
    num_windows_w = W // window_size
    total_windows = num_windows_h * num_windows_w
    k = visual_token_num // total_windows
    token_indices = []
    for b in range(B):
        indices_b = []
        for i in range(num_windows_h):
            for j in range(num_windows_w):
                window = attn_map[b, i * window_size:(i + 1) * window_size,
                                  j * window_size:(j + 1) * window_size]
                window_flat = window.reshape(-1)
                topk_values, topk_indices = torch.topk(window_flat, k)
                for idx in topk_indices:
                    dy, dx = divmod(idx.item(), window_size)
                    global_y = i * window_size + dy
                    global_x = j * window_size + dx
                    global_index = global_y * W + global_x
                    indices_b.append(global_index)
        token_indices.append(indices_b)
    token_indices = torch.tensor(token_indices, device=image_attentions.device)
    return token_indices


def official_image_attentions(attentions):
    """llava_arch.py L255-256: the tower's attentions (``feature_select_attentions``) averaged over heads."""
    image_attentions = feature_select_attentions(attentions)
    image_attentions = image_attentions.mean(dim=2)
    return image_attentions


def official_encode_images(image_attentions, image_features, visual_token_num, local_block=5, grid=(24, 24),
                           window_size=6):
    """llava_arch.py L257-293 on ``official_image_attentions`` (L255-256, computed once per tower), with the
    projector applied by the caller (``image_features`` are its outputs, B, N, D); ``local_block`` (official
    5), ``grid`` and ``window_size`` are arguments. Returns (image_features, index_mask) as
    ``encode_images``."""
    B, N = image_features.shape[:2]
    if visual_token_num == N:  # official: == 576
        index_mask = torch.ones(B, N, dtype=torch.bool, device=image_features.device)
        return image_features, index_mask
    image_attentions_shallow = image_attentions[local_block]  # argument (official 5)
    image_attentions_deep = image_attentions[-2]
    global_ratio = 0.5
    local_ratio = 1 - global_ratio
    local_indices = official_window_cls_selection(image_attentions_shallow,
                                                  int(visual_token_num * local_ratio),
                                                  window_size=window_size, grid=grid)
    for b in range(B):
        image_attentions_deep[b, local_indices[b]] = 0
    global_indices = torch.topk(image_attentions_deep,
                                k=visual_token_num - int(visual_token_num * local_ratio), dim=1)[1]
    token_indices = torch.cat((local_indices, global_indices), dim=1)
    index_mask = torch.zeros(B, N, dtype=torch.bool, device=image_features.device)
    index_mask.scatter_(1, token_indices, True)
    image_features = official_token_merging(image_features, index_mask, scaling=1)
    return image_features, index_mask


def rotary_437(x, seq_len, dim, base):
    """modeling_llama_x.py L126-160 (``LlamaRotaryEmbedding``, cache in float32, returned in ``x``'s
    dtype)."""
    inv_freq = 1.0 / (base ** (torch.arange(0, dim, 2).float() / dim))
    t = torch.arange(max(2048, seq_len), dtype=inv_freq.dtype)
    freqs = torch.outer(t, inv_freq)
    emb = torch.cat((freqs, freqs), dim=-1)
    cos_cached, sin_cached = emb.cos().to(torch.float32), emb.sin().to(torch.float32)
    return cos_cached[:seq_len].to(dtype=x.dtype), sin_cached[:seq_len].to(dtype=x.dtype)


def rotate_half(x):
    """modeling_llama_x.py L207-211."""
    x1 = x[..., : x.shape[-1] // 2]
    x2 = x[..., x.shape[-1] // 2:]
    return torch.cat((-x2, x1), dim=-1)


def apply_rotary_pos_emb(q, k, cos, sin, position_ids, unsqueeze_dim=1):
    """modeling_llama_x.py L214-240."""
    cos = cos[position_ids].unsqueeze(unsqueeze_dim)
    sin = sin[position_ids].unsqueeze(unsqueeze_dim)
    q_embed = (q * cos) + (rotate_half(q) * sin)
    k_embed = (k * cos) + (rotate_half(k) * sin)
    return q_embed, k_embed


def causal_4d(n, dtype):
    """transformers 4.37 ``_prepare_4d_causal_attention_mask`` of an all-ones 2-D mask: 0 / the dtype's
    minimum."""
    return torch.full((n, n), torch.finfo(dtype).min).triu(1)[None, None].to(dtype)


def official_layer_prune(lm, image_token_list, image_tokens_, image_token_posi, prompt_len, cur_num,
                         rank_layer, features, position_ids):
    """modeling_llama_x.py L1320-1509 (right padding, inference, attention mask and labels None, B = 1):
    (position_ids, hidden states, kept visual rows: bookkeeping)."""
    batch_size = features.shape[0]
    image_tokens = [min(int(image_token_list[cur_num]), cur_image_token) for cur_image_token in image_tokens_]
    keep_length = [min(int(image_token_list[cur_num + 1]), cur_image_token)
                   for cur_image_token in image_tokens_]
    features_list = []
    attention_mask = torch.ones((batch_size, features.shape[1]), dtype=torch.bool, device=features.device)
    hidden_states = features.clone().detach()
    self_attn = lm.layers[rank_layer].self_attn
    hidden_states = lm.layers[rank_layer].input_layernorm(hidden_states)
    num_heads = self_attn.config.num_attention_heads
    num_key_value_heads = self_attn.config.num_key_value_heads
    head_dim = self_attn.head_dim
    bsz, q_len, _ = hidden_states.size()
    query_states = self_attn.q_proj(hidden_states)
    key_states = self_attn.k_proj(hidden_states)
    value_states = self_attn.v_proj(hidden_states)
    query_states = query_states.view(bsz, q_len, num_heads, head_dim).transpose(1, 2)
    key_states = key_states.view(bsz, q_len, num_key_value_heads, head_dim).transpose(1, 2)
    value_states = value_states.view(bsz, q_len, num_key_value_heads, head_dim).transpose(1, 2)
    kv_seq_len = key_states.shape[-2]
    cos, sin = rotary_437(value_states, kv_seq_len, head_dim, self_attn.config.rope_parameters["rope_theta"])
    query_states, key_states = apply_rotary_pos_emb(query_states, key_states, cos, sin, position_ids)
    eager_attention_mask = causal_4d(q_len, hidden_states.dtype)
    features = [cur_features[cur_attention_mask] for cur_features,
                cur_attention_mask in zip(features, attention_mask)]
    kept_rows = None
    for i in range(batch_size):
        image_index = image_token_posi[i]
        cur_key_states = key_states[i]
        cur_query_states = query_states[i]
        cur_eager_attention_mask = eager_attention_mask[i]
        prompt_total_len = prompt_len[i] + image_tokens[i]
        text_query_states = cur_query_states[:, prompt_total_len - 1, :].unsqueeze(1)
        text_eager_attention_mask = cur_eager_attention_mask[:, prompt_total_len - 1, :].unsqueeze(1)
        attn_weights = torch.matmul(text_query_states, cur_key_states.transpose(1, 2)) / math.sqrt(head_dim)
        attn_weights = attn_weights + text_eager_attention_mask
        attn_weights = nn.functional.softmax(attn_weights, dim=-1, dtype=torch.float32).to(query_states.dtype)
        attention_avg_head = torch.mean(attn_weights, dim=0)
        attention_avg_head = attention_avg_head[:, image_index:image_index + image_tokens[i]]
        attention_avg_text = torch.mean(attention_avg_head, dim=0)
        top_rank_index = attention_avg_text.topk(keep_length[i]).indices
        top_rank_index = top_rank_index + image_index
        top_rank_index = top_rank_index.sort().values
        kept_rows = top_rank_index - image_index  # bookkeeping
        start_index = image_index + image_tokens[i]
        new_input_embeds = torch.cat([features[i][:image_index, :], features[i][top_rank_index, :],
                                      features[i][start_index:, :]], dim=0)
        features_list.append(new_input_embeds)
    max_len = max(x.shape[0] for x in features_list)
    position_ids = torch.zeros((batch_size, max_len), dtype=position_ids.dtype, device=position_ids.device)
    for i, cur_new_embed in enumerate(features_list):
        cur_len = cur_new_embed.shape[0]
        position_ids[i, :cur_len] = torch.arange(0, cur_len, dtype=position_ids.dtype,
                                                 device=position_ids.device)
    return position_ids, torch.stack(features_list, dim=0), kept_rows, attention_avg_text


def official_forward_x(lm, inputs_embeds, layer_list, image_token_list, image_token_posi, prompt_len,
                       image_tokens):
    """modeling_llama_x.py L1186-1295 (prefill): the decoder loop with ``layer_prune`` after each layer of
    ``layer_list``; returns (final normed hidden, kept rows, scores) of the last pruning."""
    seq_length = inputs_embeds.shape[1]
    position_ids = torch.arange(0, seq_length, dtype=torch.long)[None]
    hidden_states = inputs_embeds
    kept_rows = scores = None
    for layer_idx, decoder_layer in enumerate(lm.layers):
        mask = causal_4d(hidden_states.shape[1], hidden_states.dtype)
        pe = lm.rotary_emb(hidden_states, position_ids)
        out = decoder_layer(hidden_states, attention_mask=mask, position_ids=position_ids,
                            position_embeddings=pe)
        hidden_states = out[0] if isinstance(out, tuple) else out
        rank_layer = layer_idx + 1
        if rank_layer in layer_list:
            stage = layer_list.index(rank_layer)
            position_ids, hidden_states, kept_rows, scores = official_layer_prune(
                lm, image_token_list, image_tokens, image_token_posi, prompt_len, stage, rank_layer,
                hidden_states, position_ids)
    return lm.norm(hidden_states), kept_rows, scores


# ----------------------------------------------------------------------------------------------
# A random CLIP tower on LLaVA-1.5's grid and depth
# ----------------------------------------------------------------------------------------------

class Tower:
    """A random transformers CLIP vision tower with 24 blocks on the 24x24 grid (so the official block 5 and
    -2 apply as they are), as a CLIP backend; ``features`` stand for the projector outputs; ``side``: another
    square grid."""

    def __init__(self, dtype: torch.dtype, seed: int = 0, layers: int = 24, width: int = 32,
                 side: int = 24):
        from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection

        torch.manual_seed(seed)
        cfg = CLIPVisionConfig(hidden_size=width, intermediate_size=2 * width, num_hidden_layers=layers,
                               num_attention_heads=4, image_size=14 * side, patch_size=14)
        self.model = CLIPVisionModelWithProjection(cfg).eval().to(dtype)
        for layer in self.model.vision_model.encoder.layers:  # peaked attention rows, as CLIP's
            layer.self_attn.q_proj.weight.data.mul_(4.0)
        self.vision_heads = 4
        g = torch.Generator().manual_seed(seed)
        pixels = torch.randn(1, 3, 14 * side, 14 * side, generator=g).to(dtype)
        self.features = torch.randn(1, side * side, 24, generator=g).to(dtype)
        self.side = side
        with torch.no_grad():
            self.hidden_states = tuple(
                self.model(pixel_values=pixels, output_hidden_states=True).hidden_states)
            blocks = self.model.vision_model.encoder.layers
            attentions = tuple(
                official_clip_attention(block.self_attn, block.layer_norm1(self.hidden_states[b]))[0]
                               for b, block in enumerate(blocks))
        self.image_attentions = official_image_attentions(attentions)

    @torch.no_grad()
    def vision_qkv(self, block, hidden):
        layer = self.model.vision_model.encoder.layers[block]
        x = layer.layer_norm1(hidden)
        return layer.self_attn.q_proj(x), layer.self_attn.k_proj(x), layer.self_attn.v_proj(x)

    def inputs(self) -> SelectorInputs:
        return SelectorInputs(
            VisionTrace(hidden_states=self.hidden_states, grid=(self.side, self.side), num_prefix_tokens=1,
                                          backend=self))


@functools.cache
def tower(dtype: torch.dtype) -> Tower:
    return Tower(dtype)


def ours_vision(inputs, features, visual, **scan):
    """The port's vision stage on (N, D) features: (kept grid indices, merged LLM inputs)."""
    n = features.shape[0]
    if visual >= n:
        return torch.arange(n), features
    scans = vscan.global_and_local_scan(inputs, visual, **scan)
    kept, dropped = vscan.raster_split(torch.cat([scans["local"], scans["global"]]), n)
    return kept, vscan.token_merging(features, kept, dropped)


def official_vision(t: Tower, visual, features=None, **kw):
    features = (t.features if features is None else features).clone()
    merged, mask = official_encode_images(t.image_attentions.clone(), features, visual, **kw)
    return torch.arange(mask.shape[1])[mask[0]], merged[0][mask[0]]


# ----------------------------------------------------------------------------------------------
# The vision stage: every V, three dtypes
# ----------------------------------------------------------------------------------------------

#: V = visual_token_num where the scans change shape: the first with local picks (32), the 16-multiples of
#: int(V / 2) around the headline 96/192/288 (K = 64/128/192), the last pruned and N
EDGES = (32, 33, 63, 64, 65, 95, 96, 97, 191, 192, 193, 287, 288, 289, 575, 576)
SAMPLED = {torch.float32: sorted(set(range(34, 577, 11)) | set(EDGES)), torch.float16: EDGES,
           torch.bfloat16: EDGES}


def _compare_vision(dtype, visuals):
    """Ours against the official at each V; the tower's [CLS] attentions the scans rank (a function of the
    trace and the block) are computed once."""
    t = tower(dtype)
    inputs = t.inputs()
    with computed_once(vscan, "eager_cls_attention"):
        _compare_each(t, inputs, dtype, visuals)


def _compare_each(t, inputs, dtype, visuals):
    for visual in visuals:
        kept, merged = ours_vision(inputs, t.features[0], visual)
        ref_kept, ref_merged = official_vision(t, visual)
        assert kept.tolist() == ref_kept.tolist(), visual
        assert len(kept) == vscan.scanned_count(visual, 576), visual
        torch.testing.assert_close(merged, ref_merged, rtol=0, atol=1e-5 if dtype == torch.float32 else 0)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
def test_sampled_visual_counts_match_the_official_scans_and_merge(dtype):
    """Sampled V on the 24-block, 24x24 tower: the same kept patches in raster order, the merged tokens within
    1e-5 in float32 (bit-equal in the official float16 and in GLaMM's bfloat16)."""
    _compare_vision(dtype, SAMPLED[dtype])


@pytest.mark.slow
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
def test_every_visual_count_matches_the_official_scans_and_merge(dtype):
    """Every V = 32..576 (below 32 the official code crashes: the next test)."""
    _compare_vision(dtype, range(32, 577))


def test_below_32_the_official_code_crashes_and_the_port_scans_globally():
    """Deviation 1: V < 32 leaves no local pick per window; the official empty index tensor is float and
    cannot index. Here the local scan keeps nothing and the global scan its V - int(V / 2)."""
    t = tower(torch.float32)
    for visual in range(1, 32):
        with pytest.raises(IndexError):
            official_vision(t, visual)
        scans = vscan.global_and_local_scan(t.inputs(), visual)
        deep = t.image_attentions[-2][0]
        assert scans["local"].numel() == 0
        assert scans["global"].tolist() == torch.topk(deep[None], k=visual - int(visual / 2),
                                                      dim=1)[1][0].tolist()


def test_exact_fills_the_local_remainder_with_global_picks():
    """Deviation 2: ``exact=True`` keeps V tokens for every V; where ``int(V / 2) % 16 == 0`` it is the
    official scan."""
    t = tower(torch.float32)
    for visual in (1, 20, 33, 50, 96, 100, 287, 288, 575):
        scans = vscan.global_and_local_scan(t.inputs(), visual, exact=True)
        kept, _ = vscan.raster_split(torch.cat([scans["local"], scans["global"]]), 576)
        assert len(kept) == visual == vscan.scanned_count(visual, 576, exact=True)
        if visual >= 32 and int(visual / 2) % 16 == 0:
            assert kept.tolist() == official_vision(t, visual)[0].tolist()


@pytest.mark.parametrize("local_block", [0, 9, 23])
def test_other_local_blocks_match(local_block):
    t = tower(torch.float32)
    for visual in (32, 96, 150, 288, 500):
        kept, merged = ours_vision(t.inputs(), t.features[0], visual, local_block=local_block)
        ref_kept, ref_merged = official_vision(t, visual, local_block=local_block)
        assert kept.tolist() == ref_kept.tolist()
        torch.testing.assert_close(merged, ref_merged, rtol=0, atol=1e-5)


@pytest.mark.parametrize("grid,window", [((8, 8), None), ((7, 9), None), ((10, 13), 3), ((5, 5), 1)])
def test_odd_grids_window_scan_is_the_official_arithmetic(grid, window):
    """Adaptation 3: on other grids the windows are ``side // 4`` patches (or ``window``); the local scan is
    the official ``window_cls_selection`` with the grid as an argument, for every per-window count, with ties
    (bfloat16 scores)."""
    rows, cols = grid
    w = vscan.default_window(rows, cols) if window is None else window
    g = torch.Generator().manual_seed(rows * cols)
    for dtype in (torch.float32, torch.bfloat16):
        attention = torch.rand(rows * cols, generator=g).to(dtype)
        windows = (rows // w) * (cols // w)
        for per_window in range(0, w * w + 1):
            ours = vscan.window_cls_selection(attention, rows, cols, per_window, w)
            ref = official_window_cls_selection(attention[None], per_window * windows, w, grid)
            assert ours.tolist() == ref.reshape(-1).long().tolist(), (dtype, per_window)


def test_defaults_keep_the_official_values_at_llava_shapes():
    assert vscan.default_window(24, 24) == 6 and vscan.default_window(8, 8) == 2 and vscan.default_window(
        3, 3) == 1
    assert vscan.default_local_block(24) == 5 and vscan.default_local_block(
        12) == 2 and vscan.default_local_block(2) == 0
    assert vscan.default_layer(32) == 16 and vscan.default_layer(4) == 2 and vscan.default_layer(40) == 20
    assert [vscan.stage_counts(k, 576) for k in (64, 128, 192, 1, 2, 3, 384, 400, 576)] == [
        (96, 32), (192, 64), (288, 96), (1, 1), (3, 1), (4, 2), (576, 192), (576, 224), (576, 576)]


# ----------------------------------------------------------------------------------------------
# The middle layer and the tiny GLaMM end to end
# ----------------------------------------------------------------------------------------------

def official_glamm(pipe, prep, budget, local_block=0, layer=2, counts=None):
    """The official VScan on the GLaMM pipeline's CLIP trace and LLM: ``encode_images`` on the attentions of
    the tower's own blocks (block ``local_block``: the tiny tower has 2 blocks, no block 5; ``[-2]`` as the
    official), the projector outputs ``pipe.visual_tokens`` (L287), the LLM input
    ``image_feature[index_mask]`` (L592) placed in GLaMM's prompt, then ``forward_x`` with ``layer_list
    [layer]`` and ``image_token_list [V, kept]`` (model_vqa_loader.py L113-115). Returns (index mask, LLM
    input tokens, kept rows, final, layout)."""
    visual, keep = vscan.stage_counts(budget, 576) if counts is None else counts
    vision = prep.vision
    blocks = pipe.clip.model.vision_model.encoder.layers
    with torch.no_grad():
        attentions = tuple(
            official_clip_attention(block.self_attn, block.layer_norm1(vision.hidden_states[b]))[0]
                           for b, block in enumerate(blocks))
        features = pipe.visual_tokens(prep)[None].clone()
        merged, mask = official_encode_images(official_image_attentions(attentions), features, visual,
                                              local_block=local_block)
        tokens = merged[0][mask[0]]
        layout = pipe.layout(prep, len(tokens))
        final, rows, _ = official_forward_x(pipe.language_model, pipe.sequence_embeds(prep, tokens), [layer],
                                            [visual, keep], [layout.image_start],
                                            [layout.seq_len - len(tokens)], [len(tokens)])
    return mask[0], tokens, rows, final, layout


def _compare_glamm(pipe, prep, budget, tol, **options):
    out = pipe.ground(prep, "vscan", budget, **options)
    mask, tokens, rows, final, layout = official_glamm(pipe, prep, budget, **options)
    stage1 = torch.arange(576)[mask]
    if budget == 576:  # nothing pruned: the unpruned model at the LLM input
        assert out.kept_indices.tolist() == list(range(576)) and rows.tolist() == list(range(576))
    else:
        parts = out.selection.parts
        assert parts["stage1_kept"].tolist() == stage1.tolist()
        assert out.kept_indices.tolist() == stage1[rows].tolist()
        assert parts["stage_visual"].tolist() == [len(stage1), len(rows)]
        # the tokens entering the LLM (``vscan_forward``'s first stage; the pipeline ran the whole forward)
        scan = {k: v for k, v in options.items() if k != "layer"}
        merged, _, _ = vscan.vision_stage(pipe.context(prep), vscan.stage_counts(budget, 576)[0], **scan)
        torch.testing.assert_close(merged, tokens, rtol=0, atol=tol)
    assert out.seq_len == final.shape[1]
    torch.testing.assert_close(out.seg_hidden, final[0, out.seg_positions], rtol=tol, atol=tol)
    return out


@pytest.mark.parametrize("budget", [22, 64, 100, 128, 192, 300, 400, 576])
def test_glamm_pipeline_equals_the_official_code(tiny_glamm, tiny_glamm_prep, budget):
    """The tiny GLaMM (24x24 grid, 2 CLIP blocks, 4 LLM layers: middle layer 2) on a COCO image, float32: the
    same tokens enter the LLM (merged within 1e-5), the same stay after layer 2, the [SEG] hidden states
    within 1e-5."""
    _compare_glamm(tiny_glamm, tiny_glamm_prep, budget, 1e-5)


@pytest.mark.slow
def test_glamm_pipeline_every_budget(tiny_glamm, tiny_glamm_prep):
    """Every K = 22..576 (below, V < 32: the official code crashes)."""
    for budget in range(22, 577):
        _compare_glamm(tiny_glamm, tiny_glamm_prep, budget, 1e-5)


@pytest.mark.parametrize("options", [{"local_block": 1}, {"layer": 1}, {"layer": 3}])
def test_glamm_pipeline_other_blocks_and_layers(tiny_glamm, tiny_glamm_prep, options):
    _compare_glamm(tiny_glamm, tiny_glamm_prep, 64, 1e-5, **options)


@pytest.mark.parametrize("counts", [(576, 100), (96, 96), (200, 150), (40, 1)])
def test_glamm_pipeline_explicit_counts(tiny_glamm, tiny_glamm_prep, counts):
    """``counts=(visual_token_num, image_token_list[1])`` as the official flags: 576 enters unmerged
    (L261-264), a kept count of at least V' prunes nothing in the middle (the official topk of all,
    sorted)."""
    pipe, prep = tiny_glamm, tiny_glamm_prep
    out = pipe.ground(prep, "vscan", 64, counts=counts)
    mask, _, rows, final, _ = official_glamm(pipe, prep, 64, counts=counts)
    stage1 = torch.arange(576)[mask]
    assert out.selection.parts["stage1_kept"].tolist() == stage1.tolist()
    assert out.kept_indices.tolist() == stage1[rows].tolist()
    assert out.prune_layer == (0 if len(rows) == len(stage1) else 2)
    torch.testing.assert_close(out.seg_hidden, final[0, out.seg_positions], rtol=1e-5, atol=1e-5)


def test_schedule_is_what_the_pipeline_keeps(tiny_glamm, tiny_glamm_prep):
    """The FLOPs schedule (official layer 16 of 32; the tiny LLM's 2 of 4) counts the tokens the run keeps;
    the headline budgets are the official 96/32, 192/64, 288/96 and average K over the layers."""
    method = vscan.VSCAN
    assert method.schedule(64, 576, 32) == ((0, 96), (16, 32))
    assert method.schedule(128, 576, 32) == ((0, 192), (16, 64))
    assert method.schedule(192, 576, 32) == ((0, 288), (16, 96))
    assert method.schedule(576, 576, 32) == ((0, 576),) and method.schedule(400, 576,
                                                                            32) == ((0, 576), (16, 224))
    # V = 150: 16 windows x (75 // 16) + 75 global
    assert method.schedule(100, 576, 32) == ((0, 139), (16, 50))
    assert method.schedule(100, 576, 32, exact=True) == ((0, 150), (16, 50))
    for budget in (64, 128, 192):
        (_, v), (layer, kept) = method.schedule(budget, 576, 32)
        assert (layer * v + (32 - layer) * kept) / 32 == budget
    for budget in (1, 7, 22, 50, 64, 100, 333, 400, 575):
        for exact in (False, True):
            out = tiny_glamm.ground(tiny_glamm_prep, "vscan", budget, exact=exact)
            stages = method.schedule(budget, 576, 4, exact=exact)
            visual = out.selection.parts["stage_visual"].tolist()
            assert [v for _, v in stages] == (visual if visual[0] != visual[1]
                                              else visual[:1]), (budget, exact)
            assert stages[-1][0] == out.prune_layer


def test_deterministic_merge_is_the_same_on_cpu():
    t = tower(torch.float32)
    scans = vscan.global_and_local_scan(t.inputs(), 96)
    kept, dropped = vscan.raster_split(torch.cat([scans["local"], scans["global"]]), 576)
    assert torch.equal(vscan.token_merging(t.features[0], kept, dropped, deterministic=True),
                       vscan.token_merging(t.features[0], kept, dropped))
    assert not torch.are_deterministic_algorithms_enabled()


@pytest.fixture(scope="module")
def glamm_bf16(coco128):
    """The tiny GLaMM in bfloat16 (GLaMM's precision; the official numerics score in it), its LLM q/k scaled
    by 8 so that the middle-layer scores spread, on the first COCO image."""
    from PIL import Image

    from litelvlm.glamm import GlammPipeline

    p = GlammPipeline.from_model_string("tiny-random:0", dtype=torch.bfloat16)
    assert p.numerics.score_dtype == "model" and p.dtype == torch.bfloat16
    with torch.no_grad():
        for layer in p.language_model.layers:
            layer.self_attn.q_proj.weight.mul_(8)
            layer.self_attn.k_proj.weight.mul_(8)
    image = Image.open(sorted((coco128 / "images").glob("*.jpg"))[0]).convert("RGB")
    return p, p.prepare(image, SENTENCES)


@pytest.mark.parametrize("budget", [22, 64, 128, 192, 400])
def test_glamm_pipeline_equals_the_official_code_in_bfloat16(glamm_bf16, budget):
    pipe, prep = glamm_bf16
    assert prep.vision.hidden_states[0].dtype == torch.bfloat16
    _compare_glamm(pipe, prep, budget, 0)


@pytest.mark.parametrize("dtype,visual",
                         [("float32", 96), ("bfloat16", 96), ("float32", 288), ("bfloat16", 288)])
def test_every_middle_layer_count_keeps_the_official_rows(tiny_glamm, tiny_glamm_prep, glamm_bf16, dtype,
                                                          visual):
    """For V' tokens entering the LLM (96, K = 64; 288, K = 192), the middle layer's scores are
    ``layer_prune``'s (bit-equal in bfloat16), and for every kept count 1..V' the top rows of ours are the
    official top rows (L1446-1451 on the official scores; the whole call path is in the pipeline tests)."""
    pipe, prep = (tiny_glamm, tiny_glamm_prep) if dtype == "float32" else glamm_bf16
    with torch.no_grad():
        tokens, _, _ = vscan.vision_stage(pipe.context(prep), visual)
        run_ctx = vscan.LLMContext(pipe, prep, tokens)
        v, s = run_ctx.num_visual, run_ctx.image_start
        ours = vscan.middle_scores(run_ctx, 2)
        _, _, rows, attention_avg_text = official_layer_prune(
            pipe.language_model, [visual, v], [v], [s], [run_ctx.seq_len - v], 0, 2, run_ctx.hidden_before(2),
            torch.arange(run_ctx.seq_len)[None])
    # float32: the one row against the full product can differ in the last bit; bfloat16: identical
    torch.testing.assert_close(ours, attention_avg_text, rtol=1e-6 if dtype == "float32" else 0.0, atol=0)
    assert torch.equal(vscan.middle_keep(run_ctx, 2, v), rows) and rows.tolist() == list(range(v))
    for keep in range(1, v + 1):
        top_rank_index = attention_avg_text.topk(keep).indices  # L1446-1451 (the image offset cancels)
        top_rank_index = top_rank_index.sort().values
        assert torch.topk(ours, keep).indices.sort().values.tolist() == top_rank_index.tolist(), (
            visual, keep)


def test_flops_count_runs_vscan_on_its_schedule(tmp_path):
    """``efficiency --flops-only`` runs VScan's own forward on the meta device (no host sync): 3K/2 visual
    tokens from layer 0, K/2 from the middle layer; the measured count adds the scans' attentions, the merge
    and the scores to the schedule's (on the tiny model more than the LLM itself)."""
    import pandas as pd

    from litelvlm.cli import main

    out = tmp_path / "eff"
    assert main(
        ["efficiency", "--arch", "tiny", "--flops-only", "--no-figures", "--attn", "sdpa", "--budgets", "64",
                 "--methods", "none,vscan", "--out", str(out)]) == 0
    df = pd.read_csv(out / "efficiency.csv").set_index("method")
    text = df.loc["none", "n_tokens"] - 576
    assert (df.loc["vscan", "n_tokens_first_layers"], df.loc["vscan", "n_tokens"]) == (text + 96, text + 32)
    assert df.loc["vscan", "prune_layer"] == 2
    measured, analytic = df.loc["vscan", "llm_tflops_measured"], df.loc["vscan", "llm_tflops_analytic"]
    assert analytic < measured
