"""DART in the GLaMM LLM keeps the tokens, and runs the layers, that the official DART code does.

Transcribes ZichenWen1/DART @ 9fee9fa199d591cf91891ad468ab52c754de9bf5 (read from the fork
xqy1111111/DART, which holds the official history),
``llava/model/language_model/modeling_llama_self.py`` L315-379 (``DART.forward``, the decoder
loop without cache) and L397-449 (``get_retained_image_token``), with the defaults (at the
last official commit 5a19452fc173017191c247848673e0bde755695a) of
``llava/eval/model_vqa_loader.py`` L170-179 and ``scripts/v1_5/eval/*.sh`` (pruned layer 2,
4 image + 4 text pivots, ``max_num_trunction`` 128). ``layer_outputs[-2]`` of the official
decoder layer is the attention's ``key_states`` after RoPE and ``repeat_kv`` (L578, L621,
L912, L993): here captured from transformers' eager attention of the same layer.

DART ranks by key L1 norms and cosine similarities, in the model's dtype in the official code and
here (bfloat16 in the GLaMM runs): the comparisons run in float32 and bfloat16.
"""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest
import torch

from litelvlm.methods import dart as dart_module  # noqa: F401  (registers "dart")
from tests.fixtures.once import computed_once

DART_COMMIT = "9fee9fa199d591cf91891ad468ab52c754de9bf5"


@pytest.fixture(scope="module")
def pipe(tiny_glamm):
    return tiny_glamm


@pytest.fixture(scope="module")
def prep(pipe):
    from PIL import Image

    img = Image.new("RGB", (64, 48), (90, 140, 30))
    return pipe.prepare(img, ["the dog on the left", "a red cup"])


@pytest.fixture(scope="module")
def ctx(pipe, prep):
    """The context over ``prep`` (read only), made once per module."""
    return pipe.context(prep)


# ----------------------------------------------------------------------------------------------
# Official code, transcribed
# ----------------------------------------------------------------------------------------------

def official_get_retained_image_token(config, last_layer_state, any_states, counts=None):
    """``DART.get_retained_image_token``, modeling_llama_self.py L397-449 (verbatim but for the
    LLaVA-NeXT branch L413-417, ``config.text_length`` is None for LLaVA-1.5). ``counts`` (picks per
    pivot in processing order) is this project's deviation 1 for budgets the official code cannot keep;
    None is the official ``TOKEN_TOPK`` for every pivot."""
    DART_config = config.DART_config
    image_token_start_index = DART_config['image_token_start_index']
    image_token_length = DART_config['image_token_length']
    MAX_NUM_TRUNCTION = DART_config['max_num_trunction']
    pivot_image_token = DART_config['pivot_image_token']
    pivot_text_token = DART_config['pivot_text_token']
    reduction_ratio = DART_config['reduction_ratio']
    TOKEN_TOPK = math.ceil((MAX_NUM_TRUNCTION if MAX_NUM_TRUNCTION is not None
                            else (image_token_length * (1 - reduction_ratio)))
                           // (pivot_image_token + pivot_text_token))
    device = last_layer_state.device
    any_states = any_states.permute(0, 2, 1, 3).reshape(any_states.shape[0], any_states.shape[2], -1)
    k_states_image_token = any_states[0][image_token_start_index:image_token_start_index + image_token_length,
                                         :]
    k_states_query_token = any_states[0][image_token_start_index + image_token_length:, :]
    k_states_image_token_L1_norm = torch.norm(k_states_image_token, p=1, dim=-1)
    k_states_query_token_L1_norm = torch.norm(k_states_query_token, p=1, dim=-1)
    image_indices = (k_states_image_token_L1_norm.topk(pivot_image_token).indices
                     + image_token_start_index).tolist()
    query_indices = (k_states_query_token_L1_norm.topk(pivot_text_token).indices
                     + image_token_start_index + image_token_length).tolist()
    indices_set = set(image_indices + query_indices)
    valid_indices = set(range(image_token_start_index, image_token_start_index + image_token_length)) - set(
        image_indices)
    valid_indices_list = list(valid_indices)
    for i, item in enumerate(list(indices_set)):
        if counts is not None:  # deviation 1
            TOKEN_TOPK = counts[i]
        valid_vectors = last_layer_state[0][valid_indices_list, :]
        cos_sim = -torch.nn.functional.cosine_similarity(last_layer_state[0][item, :], valid_vectors, dim=-1)
        top_k_indices = cos_sim.topk(TOKEN_TOPK).indices
        top_k_real_indices = [valid_indices_list[i] for i in top_k_indices]
        indices_set.update(top_k_real_indices)
        valid_indices.difference_update(top_k_real_indices)
        valid_indices_list = list(valid_indices)
    indices_set.difference_update(query_indices)
    retained_image_tokens_index = torch.tensor(list(indices_set), device=device)
    return retained_image_tokens_index


def official_dart(lm, embeds, DART_config, monkeypatch):
    """``DART.forward`` L315-379 on a transformers ``LlamaModel`` with eager attention (batch 1, no
    cache); returns (keep_indexs, final normed hidden states)."""
    from transformers.models.llama import modeling_llama

    captured = []
    eager = modeling_llama.eager_attention_forward

    def capture(module, query, key, value, *args, **kwargs):
        # the layer's key_states, as L578/L621 return them
        captured.append(modeling_llama.repeat_kv(key, module.num_key_value_groups))
        return eager(module, query, key, value, *args, **kwargs)

    monkeypatch.setattr(modeling_llama, "eager_attention_forward", capture)
    config = SimpleNamespace(DART_config=DART_config, text_length=None)
    seq_length = embeds.shape[1]
    position_ids = torch.arange(seq_length)[None]
    # _prepare_4d_causal_attention_mask for an unpadded sequence (additive)
    attention_mask = torch.full((seq_length, seq_length), torch.finfo(embeds.dtype).min).triu(1)[None, None]
    hidden_states = embeds
    layer_outputs = None
    for layer_idx, decoder_layer in enumerate(lm.layers):
        K = DART_config['K']
        image_token_start_index = DART_config['image_token_start_index']
        image_token_length = DART_config['image_token_length']
        if layer_idx == K and seq_length > 1:
            device = hidden_states.device
            last_layer_state = layer_outputs[0]
            last_layer_state = lm.norm(last_layer_state)
            any_states = layer_outputs[-2]
            retained_image_tokens_index = official_get_retained_image_token(config, last_layer_state,
                                                                            any_states)
            keep_indexs = torch.cat(
                (torch.arange(image_token_start_index, device=device), retained_image_tokens_index,
                                     torch.arange(image_token_start_index + image_token_length, seq_length,
                                                  device=device)))
            keep_indexs = keep_indexs.sort().values
            hidden_states = hidden_states[:, keep_indexs, :]
            if attention_mask is not None:
                attention_mask = attention_mask[:, :, :hidden_states.shape[1], :hidden_states.shape[1]]
            position_ids = keep_indexs.unsqueeze(0)
        pe = lm.rotary_emb(hidden_states, position_ids)
        out = decoder_layer(hidden_states, attention_mask=attention_mask, position_ids=position_ids,
                            position_embeddings=pe)
        out = out[0] if isinstance(out, tuple) else out
        layer_outputs = (out, None, None, captured[-1], None)  # (hidden, x, q, k, v): L985-993
        hidden_states = layer_outputs[0]
    return keep_indexs, lm.norm(hidden_states)


def dart_config(ctx, K=2, max_num_trunction=128, reduction_ratio=0.778, pivots=(4, 4)):
    """``configure_DART`` (model_vqa_loader.py L18-31) with the scripts' values, at GLaMM's image offset."""
    return {"K": K, "image_token_start_index": ctx.image_start, "image_token_length": ctx.num_visual,
            "max_num_trunction": max_num_trunction, "reduction_ratio": reduction_ratio,
            "retain_token_num_for_llava_next": 320, "pivot_image_token": pivots[0],
            "pivot_text_token": pivots[1]}


def official_kept(cfg):
    """How many visual tokens the official code keeps: P_img + (P_img + P_txt) * TOKEN_TOPK."""
    m = cfg["max_num_trunction"]
    m = cfg["image_token_length"] * (1 - cfg["reduction_ratio"]) if m is None else m
    p = cfg["pivot_image_token"] + cfg["pivot_text_token"]
    return cfg["pivot_image_token"] + p * math.ceil(m // p)


def run_official(pipe, ctx, cfg, monkeypatch):
    lm = pipe.model.language_model
    old = lm.config._attn_implementation
    lm.config._attn_implementation = "eager"
    try:
        with torch.no_grad():
            return official_dart(lm, ctx.embeds, cfg, monkeypatch)
    finally:
        lm.config._attn_implementation = old
        monkeypatch.undo()


def assert_same(pipe, prep, ctx, cfg, monkeypatch):
    budget = official_kept(cfg)
    ours = pipe.ground(prep, "dart", budget, layer=cfg["K"], pivot_image=cfg["pivot_image_token"],
                       pivot_text=cfg["pivot_text_token"])
    keep, final = run_official(pipe, ctx, cfg, monkeypatch)
    kept_visual = keep[(keep >= ctx.image_start)
                       & (keep < ctx.image_start + ctx.num_visual)] - ctx.image_start
    assert ours.kept_indices.tolist() == kept_visual.tolist()
    assert ours.prune_layer == cfg["K"]
    assert ours.seq_len == final.shape[1] == ctx.seq_len - ctx.num_visual + budget
    torch.testing.assert_close(ours.seg_hidden, final[0, ours.seg_positions], rtol=1e-4, atol=1e-4)


# ----------------------------------------------------------------------------------------------
# Tests
# ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("max_num_trunction,K", [(128, 2), (64, 2), (192, 2), (128, 1), (128, 3), (8, 2)])
def test_dart_equals_the_official_loop(pipe, prep, ctx, monkeypatch, max_num_trunction, K):
    assert_same(pipe, prep, ctx, dart_config(ctx, K=K, max_num_trunction=max_num_trunction), monkeypatch)


def test_dart_equals_the_official_loop_by_reduction_ratio(pipe, prep, ctx, monkeypatch):
    cfg = dart_config(ctx, max_num_trunction=None, reduction_ratio=0.778)
    assert official_kept(cfg) == 4 + 8 * 15  # ceil(127.87 // 8) = 15
    assert_same(pipe, prep, ctx, cfg, monkeypatch)


@pytest.mark.parametrize("pivots,max_num_trunction", [((2, 6), 96), ((8, 0), 64), ((1, 1), 40)])
def test_dart_equals_the_official_loop_other_pivots(pipe, prep, ctx, monkeypatch, pivots, max_num_trunction):
    assert_same(pipe, prep, ctx, dart_config(ctx, max_num_trunction=max_num_trunction, pivots=pivots),
                monkeypatch)


def test_readme_setting_keeps_132_tokens(ctx):
    assert official_kept(dart_config(ctx)) == 132  # textvqa.sh 0.778 128 (README L93)


def test_selection_inputs_are_the_layer_keys_and_normed_states(pipe, ctx, monkeypatch):
    """``key_states`` equals the key_states the layer computes (captured from its attention)."""
    from transformers.models.llama import modeling_llama

    lm = pipe.model.language_model
    captured = []
    eager = modeling_llama.eager_attention_forward

    def capture(module, query, key, value, *args, **kwargs):
        captured.append(key)
        return eager(module, query, key, value, *args, **kwargs)

    old = lm.config._attn_implementation
    lm.config._attn_implementation = "eager"
    monkeypatch.setattr(modeling_llama, "eager_attention_forward", capture)
    try:
        with torch.no_grad():
            lm.layers[1](ctx.hidden_before(1), attention_mask=None, position_ids=ctx.position_ids,
                         position_embeddings=lm.rotary_emb(ctx.embeds, ctx.position_ids))
    finally:
        lm.config._attn_implementation = old
        monkeypatch.undo()
    ref = captured[-1].permute(0, 2, 1, 3).reshape(ctx.seq_len, -1)[ctx.image_start:]
    with torch.no_grad():
        torch.testing.assert_close(dart_module.key_states(ctx, 1), ref, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("budget", [576, 300, 128, 64, 13, 7, 4, 3, 1])
def test_every_budget_keeps_k_tokens_with_the_pivots(ctx, budget):
    sel = dart_module.dart_select(ctx, budget)
    idx = sel.indices.tolist()
    assert len(idx) == budget == len(set(idx)) and idx == sorted(idx)
    assert 0 <= idx[0] and idx[-1] < ctx.num_visual
    assert set(sel.parts["pivots"].tolist()) <= set(idx)
    assert len(sel.parts["pivots"]) == min(4, budget)
    assert sel.prune_layer == 2


def test_pivot_counts_spread_the_remainder_over_the_first_pivots():
    assert dart_module.pivot_counts(128, 8) == [16] * 8
    assert dart_module.pivot_counts(124, 8) == [16, 16, 16, 16, 15, 15, 15, 15]
    assert dart_module.pivot_counts(3, 8) == [1, 1, 1, 0, 0, 0, 0, 0]


def test_the_pivot_order_is_the_official_set_order(ctx):
    sel = dart_module.dart_select(ctx, 132)
    image = (sel.parts["pivots"] + ctx.image_start).tolist()
    text = sel.parts["text_pivots"].tolist()
    assert sel.parts["pivot_order"].tolist() == list(set(image + text))


def test_rejects_bad_options(pipe, prep, ctx):
    from litelvlm.errors import LiteLVLMError

    with pytest.raises(LiteLVLMError):
        dart_module.dart_select(ctx, 64, layer=0)
    with pytest.raises(LiteLVLMError, match="1 <= K"):  # the budget: counted once, where ground takes it
        pipe.ground(prep, "dart", 0)
    with pytest.raises(LiteLVLMError):
        dart_module.dart_select(ctx, 64, pivot_image=0)


@pytest.fixture(scope="module")
def real(pipe, coco128):
    from PIL import Image

    image = Image.open(sorted((coco128 / "images").glob("*.jpg"))[0]).convert("RGB")
    prepared = pipe.prepare(image, ["the person on the left", "the object in the middle"])
    return prepared, pipe.ground(prepared, "none")


@pytest.mark.parametrize("budget", [576, 192, 128, 64])
def test_pruned_glamm_on_a_real_image(pipe, real, budget):
    prepared, full = real
    out = pipe.ground(prepared, "dart", budget)
    ctx = pipe.context(prepared)
    assert len(out.kept_indices) == budget and out.prune_layer == 2
    assert out.seq_len == ctx.seq_len - ctx.num_visual + budget
    assert out.masks.shape == full.masks.shape == (2, *prepared.image_size)
    assert torch.isfinite(out.mask_logits).all()
    if budget == ctx.num_visual:  # nothing pruned: the unpruned run
        torch.testing.assert_close(out.seg_hidden, full.seg_hidden, rtol=1e-4, atol=1e-4)


# ----------------------------------------------------------------------------------------------
# bfloat16 and every budget
# ----------------------------------------------------------------------------------------------

@pytest.fixture(scope="module", params=["float32", "bfloat16"])
def typed(request):
    """The tiny GLaMM with the official numerics in each dtype, a prepared image and its context."""
    from PIL import Image

    from litelvlm.glamm import GlammPipeline

    p = GlammPipeline.from_model_string("tiny-random:0", dtype=getattr(torch, request.param))
    g = torch.Generator().manual_seed(11)
    image = Image.fromarray((torch.rand(72, 100, 3, generator=g) * 255).to(torch.uint8).numpy())
    prepared = p.prepare(image, ["the dog on the left", "a red cup"])
    return p, prepared, p.context(prepared)


def _official_inputs(pipe, ctx, K, monkeypatch):
    """(last_layer_state, any_states) the official loop hands ``get_retained_image_token`` at layer K."""
    seen, official = [], official_get_retained_image_token

    def spy(config, last_layer_state, any_states):
        seen.append((last_layer_state, any_states))
        return official(config, last_layer_state, any_states)

    monkeypatch.setitem(globals(), "official_get_retained_image_token", spy)
    run_official(pipe, ctx, dart_config(ctx, K=K), monkeypatch)
    assert len(seen) == 1 and seen[0][0].dtype == pipe.dtype
    return seen[0]


@pytest.mark.parametrize("K,budgets", [(2, "spread"), pytest.param(2, "every", marks=pytest.mark.slow),
                                       pytest.param(1, "every", marks=pytest.mark.slow)])
def test_budgets_equal_the_official_selection(typed, monkeypatch, K, budgets):
    """Every budget 1..N (``every``, slow; ``spread``: every K = 4 + 8t, every 9th other, the edges): the
    official selection (``max_num_trunction = K - 4``) where the official code can keep K tokens
    (K = 4 + 8t), and the documented spreading of the picks (deviation 1) elsewhere."""
    pipe, _, ctx = typed
    state, keys = _official_inputs(pipe, ctx, K, monkeypatch)
    n = ctx.num_visual
    ks = range(1, n + 1) if budgets == "every" else sorted({1, 2, 3, 5, n - 1, n, *range(4, n + 1, 8),
                                                             *range(6, n, 9)})
    with torch.no_grad(), computed_once(dart_module, "key_states"):  # the same keys at every budget
        ours_state = ctx.lm.norm(ctx.hidden_before(K))
        torch.testing.assert_close(ours_state, state, rtol=0, atol=0)
        for budget in ks:
            sel = dart_module.dart_select(ctx, budget, layer=K)
            if budget < 4:  # only the top-K visual pivots (deviation 1)
                norms = torch.norm(keys.permute(0, 2, 1, 3).reshape(ctx.seq_len, -1)[ctx.image_start:][:n],
                                   p=1, dim=-1)
                assert sel.indices.tolist() == sorted(norms.topk(budget).indices.tolist())
                continue
            cfg = dart_config(ctx, K=K, max_num_trunction=budget - 4)
            exact = (budget - 4) % 8 == 0
            counts = None if exact else dart_module.pivot_counts(budget - 4, 8)
            if exact:
                assert official_kept(cfg) == budget
            ref = official_get_retained_image_token(SimpleNamespace(DART_config=cfg, text_length=None), state,
                                                    keys, counts)
            assert sel.indices.tolist() == sorted((ref - ctx.image_start).tolist()), f"K={budget}"


@pytest.mark.parametrize("max_num_trunction", [128, 8, 560])
def test_dart_equals_the_official_loop_in_each_dtype(typed, monkeypatch, max_num_trunction):
    pipe, prepared, ctx = typed
    cfg = dart_config(ctx, max_num_trunction=max_num_trunction)
    budget = official_kept(cfg)
    ours = pipe.ground(prepared, "dart", budget)
    keep, final = run_official(pipe, ctx, cfg, monkeypatch)
    kept_visual = keep[(keep >= ctx.image_start)
                       & (keep < ctx.image_start + ctx.num_visual)] - ctx.image_start
    assert ours.kept_indices.tolist() == kept_visual.tolist()
    tol = 1e-4 if pipe.dtype == torch.float32 else 2e-2
    torch.testing.assert_close(ours.seg_hidden, final[0, ours.seg_positions], rtol=tol, atol=tol)
