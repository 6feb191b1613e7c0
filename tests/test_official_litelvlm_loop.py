"""LiteLVLM in the GLaMM loop keeps exactly the tokens, in exactly the order, that the official code keeps.

Transcribes ``CLIPVisionTower`` of sejong-rcv/LiteLVLM @ 5896153
(``model/llava/model/multimodal_encoder/clip_encoder.py`` L61-113 and L126-172): hooks on the last
block's q/k/v projections, the context ranking, the similarity of the layer -2 patch tokens
(``post_layernorm`` + ``visual_projection``) with ``text_embeds`` of the formatted QUESTIONS
(CLIP tokenizer, ``truncation=True, padding=True``), ``K // T`` lowest per question, their union,
then ``[context tokens not in the union][:K - |union|] + union``. The towers are
``CLIPVisionModelWithProjection`` / ``CLIPTextModelWithProjection`` loaded from the same random
CLIP folder the pipeline uses, as the official ``load_model`` (L33-46) loads them.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from litelvlm.glamm.protocol import sample_official


def _official_keep(vision_tower, text_tower, text_tokenizer, images, questions, num_retain_tokens,
                   select_layer=-2):
    attn_outs = {}

    def _hook_q(module, input, output):
        attn_outs["hq"] = output

    def _hook_k(module, input, output):
        attn_outs["hk"] = output

    def _hook_v(module, input, output):
        attn_outs["hv"] = output

    self_attn = vision_tower.vision_model.encoder.layers[-1].self_attn
    hq = self_attn.q_proj.register_forward_hook(_hook_q)
    hk = self_attn.k_proj.register_forward_hook(_hook_k)
    hv = self_attn.v_proj.register_forward_hook(_hook_v)
    try:
        image_forward_outs = vision_tower(images.to(dtype=vision_tower.dtype), output_hidden_states=True)
        image_features = image_forward_outs.hidden_states[select_layer].to(images.dtype)  # cls_patch
        # ctx_aware_pruning (L78-96)
        cls_q, img_k, img_v = attn_outs["hq"][:, :1, :], attn_outs["hk"][:, 1:, :], attn_outs["hv"][:, 1:, :]
        _, _, dim = cls_q.shape
        attn_logits = torch.matmul(F.normalize(cls_q, dim=-1), F.normalize(img_k, dim=-1).transpose(-2, -1))
        attn_weights = F.softmax(attn_logits / (dim ** 0.5), dim=-1)
        attn_toks = (attn_weights.transpose(1, 2) * img_v).norm(dim=-1)
        # The official call is torch.sort(..., descending=True) on the GPU, where a 576-long row is
        # sorted by a radix sort that keeps tied scores in index order (PyTorch's sortKeyValueInplace);
        # on the CPU an unstable sort breaks ties otherwise, and bfloat16 scores tie often. stable=True
        # reproduces the GPU order on the CPU (an assumption about CUDA PyTorch, not checked on a GPU here).
        _, ctx_tok_idxs = torch.sort(attn_toks.view(-1), descending=True, stable=True)
    finally:
        hq.remove()
        hk.remove()
        hv.remove()
    input_text = text_tokenizer(text=questions, return_tensors="pt", truncation=True, padding=True)
    text_features = text_tower(**input_text, output_attentions=True)
    # sim_aware_pruning (L98-113)
    feats = image_features[:, 1:].to(vision_tower.vision_model.post_layernorm.weight.dtype)
    proj = vision_tower.visual_projection(vision_tower.vision_model.post_layernorm(feats))
    similarities = torch.matmul(proj, text_features.text_embeds.unsqueeze(-1)).squeeze(-1)
    num_adaptive_toks = num_retain_tokens // text_features.text_embeds.shape[0]
    low = torch.topk(similarities, num_adaptive_toks, dim=-1, largest=False, sorted=True).indices
    lowk_sim_tok_idxs = torch.unique(low.view(-1)).unsqueeze(0)
    # adaptive token selection (L158-168)
    num_sim_topk = lowk_sim_tok_idxs.shape[1]
    m_ctx_tok_idxs = ~torch.isin(ctx_tok_idxs.view(-1), lowk_sim_tok_idxs.view(-1))
    l_ctx_tok_idxs = ctx_tok_idxs.view(-1)[m_ctx_tok_idxs].unsqueeze(0)
    num_left_tokens = num_retain_tokens - num_sim_topk
    retain = torch.cat([l_ctx_tok_idxs[:, :num_left_tokens], lowk_sim_tok_idxs], dim=1).to(torch.int64)
    assert retain.shape[1] == num_retain_tokens
    return retain[0]


@pytest.fixture(scope="module", params=["float32", "bfloat16"])
def loop(request):
    from transformers import AutoTokenizer, CLIPTextModelWithProjection, CLIPVisionModelWithProjection

    from litelvlm.clip import resolve_random_model
    from litelvlm.glamm import GlammPipeline

    dtype = getattr(torch, request.param)
    pipe = GlammPipeline.from_model_string("tiny-random:0", dtype=dtype)
    folder = resolve_random_model("tiny336-random:0", "hf")
    # the official stack (transformers 4.28) runs CLIP with eager attention, as the pipeline's official numerics do
    towers = (CLIPVisionModelWithProjection.from_pretrained(folder, dtype=dtype, attn_implementation="eager").eval(),
              CLIPTextModelWithProjection.from_pretrained(folder, dtype=dtype, attn_implementation="eager").eval(),
              AutoTokenizer.from_pretrained(folder))
    return pipe, towers


def test_transformers_preprocessing_is_the_installed_processor(loop, coco128):
    """``processor="transformers"`` (the per-expression default) is the installed transformers' default
    ``CLIPImageProcessor``; the official path is tested against transformers 4.28 in
    ``tests/test_official_clip_preprocess.py``."""
    import numpy as np
    from PIL import Image
    from transformers import CLIPImageProcessor

    from litelvlm.clip import resolve_random_model

    pipe, _ = loop
    image = Image.open(sorted((coco128 / "images").glob("*.jpg"))[0]).convert("RGB")
    official = CLIPImageProcessor.from_pretrained(resolve_random_model("tiny336-random:0", "hf"))
    ref = official.preprocess(np.asarray(image), return_tensors="pt")["pixel_values"]
    ours = pipe.clip.preprocess([image], processor="transformers").cpu()
    # the official batch is cast to bfloat16 in infer_and_evaluate.py L399-400 (our CLIP dtype here)
    torch.testing.assert_close(ours, ref.to(ours.dtype), rtol=0, atol=0)


@pytest.mark.parametrize("budget", [576, 192, 128, 64, 7])
def test_kept_tokens_equal_the_official_clip_vision_tower(loop, coco128, budget):
    from litelvlm.data import load_refer

    pipe, (vision_tower, text_tower, text_tokenizer) = loop
    records = load_refer(coco128, None, split="val")
    by_image: dict[int, list] = {}
    for r in records:
        by_image.setdefault(r.image_id, []).append(r)
    checked = 0
    for image_id in sorted(by_image)[:4]:
        recs = sorted(by_image[image_id], key=lambda r: r.order)
        sample = sample_official([r.sentence for r in recs], 0, image_id)
        image = recs[0].image()
        prep = pipe.with_sentences(pipe.prepare_image(image), sample.sentences, sample.turns)
        assert prep.text.texts == sample.questions  # LiteLVLM embeds the formatted questions
        ours = pipe.ground(prep, "litelvlm", budget).kept_indices
        with torch.no_grad():
            pixels = pipe.clip.preprocess([image], processor=pipe.numerics.clip_preprocess)
            ref = _official_keep(vision_tower, text_tower, text_tokenizer, pixels,
                                 sample.questions, budget)
        assert ours.tolist() == ref.tolist(), f"image {image_id}, K={budget}"
        checked += 1
    assert checked == 4


def test_clip_text_option_per_call(loop):
    from PIL import Image

    from litelvlm.errors import LiteLVLMError

    pipe, _ = loop
    base = pipe.prepare_image(Image.new("RGB", (40, 30), (10, 200, 90)))
    sents = ["The dog on the left.", "a cup"]
    assert pipe.with_sentences(base, sents).text.texts == [
        "Can you segment the the dog on the left. in this image?", "Can you segment the a cup in this image?"]
    assert pipe.with_sentences(base, sents, clip_text="expression").text.texts == sents
    with pytest.raises(LiteLVLMError, match="clip_text"):
        pipe.with_sentences(base, sents, clip_text="caption")


def test_every_budget_equals_the_official_loop(loop, coco128):
    """Every budget 1..N (N = 576) on one real image with 3 sampled questions, through the selector the
    pipeline calls: the kept indices and their order equal the official loop's, float32 and bfloat16."""
    from litelvlm.data import load_refer
    from litelvlm.pruning import select

    pipe, (vision_tower, text_tower, text_tokenizer) = loop
    records = load_refer(coco128, None, split="val")
    image_id = min(r.image_id for r in records)
    recs = sorted([r for r in records if r.image_id == image_id], key=lambda r: r.order)
    sample = sample_official([r.sentence for r in recs], 0, image_id)
    image = recs[0].image()
    prep = pipe.with_sentences(pipe.prepare_image(image), sample.sentences, sample.turns)
    n = prep.vision.num_patches
    with torch.no_grad():
        pixels = pipe.clip.preprocess([image], processor=pipe.numerics.clip_preprocess)
        for budget in range(1, n + 1):
            ours = select("litelvlm", prep.selector_inputs(), budget).indices
            ref = _official_keep(vision_tower, text_tower, text_tokenizer, pixels, sample.questions, budget)
            assert ours.tolist() == ref.tolist(), f"K={budget}"
    assert len(sample.questions) == 3 and n == 576
