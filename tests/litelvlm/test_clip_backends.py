"""The two CLIP backends on the SAME random OpenAI-architecture weights agree (atol 1e-4)."""

from __future__ import annotations

import pytest
import torch
from transformers import CLIPModel

from litelvlm.clip import load_clip
from litelvlm.clip.convert import hf_to_open_clip, open_clip_to_hf
from litelvlm.errors import LiteLVLMError, UnsupportedModelError

TEXTS = ["the red dog on the left", "A man, who's 2 years old!", "bowl"]
ATOL = 1e-4


@pytest.fixture(scope="module")
def pair(tiny_hf_clip_dir, tiny_open_clip_dir):
    return load_clip(str(tiny_hf_clip_dir), "hf"), load_clip(f"local-dir:{tiny_open_clip_dir}", "open_clip")


@pytest.fixture(scope="module")
def pixels():
    return torch.randn(2, 3, 56, 56, generator=torch.Generator().manual_seed(1))


def test_key_conversion_round_trip(tiny_hf_clip):
    sd = tiny_hf_clip.model.state_dict()
    back = open_clip_to_hf(hf_to_open_clip(sd))
    assert set(back) == {k for k in sd if not k.endswith("position_ids")}
    for k, v in back.items():
        assert torch.equal(v, sd[k]), k


def test_every_hidden_state_agrees(pair, pixels):
    hf, oc = pair
    a, b = hf.trace_image(pixels), oc.trace_image(pixels)
    assert len(a.hidden_states) == len(b.hidden_states) == 4
    for layer, (x, y) in enumerate(zip(a.hidden_states, b.hidden_states)):
        torch.testing.assert_close(x, y, atol=ATOL, rtol=0, msg=f"hidden_states[{layer}]")


def test_patch_embeddings_qkv_and_cls_attention_agree(pair, pixels):
    hf, oc = pair
    a, b = hf.trace_image(pixels), oc.trace_image(pixels)
    for layer in range(4):
        torch.testing.assert_close(a.projected(layer), b.projected(layer), atol=ATOL, rtol=0)
    for block in range(3):
        for x, y in zip(a.qkv(block), b.qkv(block)):
            torch.testing.assert_close(x, y, atol=ATOL, rtol=0)
        torch.testing.assert_close(a.cls_attention(block), b.cls_attention(block), atol=ATOL, rtol=0)


def test_text_embeddings_tokens_and_attention_agree(pair):
    hf, oc = pair
    ta, tb = hf.encode_text(TEXTS), oc.encode_text(TEXTS)
    assert torch.equal(ta.eos_index, tb.eos_index)
    n = int(ta.eos_index.max()) + 1
    for i, e in enumerate(ta.eos_index.tolist()):
        assert torch.equal(ta.input_ids[i, : e + 1], tb.input_ids[i, : e + 1])
    torch.testing.assert_close(ta.text_embeds, tb.text_embeds, atol=ATOL, rtol=0)
    for block in range(2):
        torch.testing.assert_close(ta.eos_attention(block)[..., :n], tb.eos_attention(block)[..., :n],
                                   atol=ATOL, rtol=0)
        pa, pb = ta.attention(block), tb.attention(block)
        for i, e in enumerate(ta.eos_index.tolist()):  # rows past a text's [EOS] are padding
            torch.testing.assert_close(pa[i, :, : e + 1, : e + 1], pb[i, :, : e + 1, : e + 1], atol=ATOL,
                                       rtol=0)


def test_attention_rows_match_eager_reference(tiny_hf_clip_dir, pixels, tiny_hf_clip):
    """Every layer's CLS row and [EOS] row equal transformers' eager output_attentions."""
    ref = CLIPModel.from_pretrained(str(tiny_hf_clip_dir), attn_implementation="eager").eval()
    trace = tiny_hf_clip.trace_image(pixels)
    with torch.no_grad():
        out = ref.vision_model(pixel_values=pixels, output_attentions=True)
    for block in range(3):
        torch.testing.assert_close(trace.cls_attention(block), out.attentions[block][:, :, 0, 1:],
                                   atol=1e-6, rtol=0)
    text = tiny_hf_clip.encode_text(TEXTS)
    mask = (torch.arange(text.input_ids.shape[1])[None] <= text.eos_index[:, None]).long()
    with torch.no_grad():
        tout = ref.text_model(input_ids=text.input_ids, attention_mask=mask, output_attentions=True)
        emb = ref.get_text_features(input_ids=text.input_ids, attention_mask=mask)
    emb = emb.pooler_output if hasattr(emb, "pooler_output") else emb
    torch.testing.assert_close(text.text_embeds, emb, atol=1e-5, rtol=0)
    rows = torch.arange(len(TEXTS))
    for block in range(2):
        torch.testing.assert_close(text.eos_attention(block), tout.attentions[block][rows, :, text.eos_index],
                                   atol=1e-6, rtol=0)


def test_qkv_equals_the_models_own_projections(tiny_hf_clip, pixels):
    """The post-hoc q/k/v equal what the last layer's q_proj/k_proj/v_proj output in the forward."""
    layer = tiny_hf_clip.model.vision_model.encoder.layers[-1].self_attn
    seen = {}
    hooks = [getattr(layer, f"{n}_proj").register_forward_hook(
        lambda m, i, o, n=n: seen.__setitem__(n, o)) for n in "qkv"]
    try:
        trace = tiny_hf_clip.trace_image(pixels)
    finally:
        for h in hooks:
            h.remove()
    for name, x in zip("qkv", trace.qkv(-1)):
        torch.testing.assert_close(x, seen[name], atol=1e-6, rtol=0)


def test_projection_is_visual_projection_of_post_layernorm(tiny_hf_clip, pixels):
    trace = tiny_hf_clip.trace_image(pixels)
    m = tiny_hf_clip.model
    expected = m.visual_projection(m.vision_model.post_layernorm(trace.hidden_states[-2][:, 1:]))
    torch.testing.assert_close(trace.projected(-2), expected)
    assert trace.projected(-2).shape == (2, 16, 24)


def test_long_text_is_truncated_with_a_warning(tiny_hf_clip):
    with pytest.warns(UserWarning, match="truncated"):
        t = tiny_hf_clip.encode_text(["word " * 100, "short"])
    assert t.truncated == [True, False]
    assert t.input_ids.shape[1] == 77 and int(t.eos_index[0]) == 76


def test_batched_text_equals_one_at_a_time(tiny_hf_clip):
    batched = tiny_hf_clip.encode_text(TEXTS, batch_size=2).text_embeds
    single = torch.cat([tiny_hf_clip.encode_text([t]).text_embeds for t in TEXTS])
    torch.testing.assert_close(batched, single, atol=1e-5, rtol=0)


def test_random_model_strings_round_trip_through_disk():
    a = load_clip("tiny-random:5", "hf")
    b = load_clip("tiny-random:5", "open_clip")
    assert a.grid == b.grid == (4, 4)
    assert a.weights_hash() == load_clip("tiny-random:5", "hf").weights_hash()
    assert a.weights_hash() != load_clip("tiny-random:6", "hf").weights_hash()


def test_missing_models_are_clear_errors(tmp_path):
    with pytest.raises(LiteLVLMError, match="does not exist"):
        load_clip(str(tmp_path / "nope"), "hf")
    with pytest.raises(LiteLVLMError, match="save_pretrained"):
        load_clip("someone/not-cached-model", "hf")
    with pytest.raises(LiteLVLMError, match="does not exist"):
        load_clip("ViT-B-32:/definitely/missing.pt", "open_clip")


def test_models_without_cls_are_an_explicit_error(tmp_path):
    from transformers import SiglipConfig, SiglipModel

    cfg = SiglipConfig(text_config=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                                        num_attention_heads=2),
                       vision_config=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                                          num_attention_heads=2, image_size=28, patch_size=14))
    SiglipModel(cfg).save_pretrained(tmp_path)
    with pytest.raises(UnsupportedModelError, match="CLS"):
        load_clip(str(tmp_path), "hf")


def test_open_clip_without_class_token_refuses_cls_quantities(pair, pixels):
    _, oc = pair
    trace = oc.trace_image(pixels)
    trace.num_prefix_tokens = 0  # as for a pool_type='avg' tower without a class token
    with pytest.raises(UnsupportedModelError, match="no CLS token"):
        trace.cls_attention(-1)


def test_length_sorted_batches_return_the_input_order(tiny_hf_clip):
    """encode_text batches length-sorted texts; the trace must be in the input order, whatever the batch
    size."""
    texts = ["the dog on the left near the big red car", "a", "two people standing", "cat", "x y z", "a man"]
    one = tiny_hf_clip.encode_text(texts, batch_size=64)
    many = tiny_hf_clip.encode_text(texts, batch_size=2)
    assert many.texts == texts
    assert torch.allclose(one.text_embeds, many.text_embeds, atol=1e-5)
    assert torch.equal(one.eos_index, many.eos_index)
    valid = torch.arange(one.input_ids.shape[1])[None] <= one.eos_index[:, None]  # padding may differ
    assert torch.equal(one.input_ids[valid], many.input_ids[:, :one.input_ids.shape[1]][valid])
    for i, text in enumerate(texts):  # each row is that text's own encoding
        alone = tiny_hf_clip.encode_text([text])
        assert torch.allclose(many.text_embeds[i], alone.text_embeds[0], atol=1e-5)
