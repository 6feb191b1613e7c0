"""LiteLVLM in the GLaMM loop keeps exactly the tokens, in exactly the order, that the official code keeps.

Transcribes ``CLIPVisionTower`` of sejong-rcv/LiteLVLM @ 5896153
(``model/llava/model/multimodal_encoder/clip_encoder.py`` L61-113 and L126-172): hooks on the last
block's q/k/v projections, the context ranking, the similarity of the layer -2 patch tokens
(``post_layernorm`` + ``visual_projection``) with ``text_embeds`` of the formatted QUESTIONS
(CLIP tokenizer, ``truncation=True, padding=True``), ``K // T`` lowest per question, their union,
then ``[context tokens not in the union][:K - |union|] + union``. The towers are
``CLIPVisionModelWithProjection`` / ``CLIPTextModelWithProjection`` loaded from the same random
CLIP folder the pipeline uses, as the official ``load_model`` (L33-46) loads them. The transcription is
``tests/official_litelvlm.py``.
"""

from __future__ import annotations

import pytest
import torch

from litelvlm.glamm.protocol import sample_official
from tests.official_litelvlm import official_retain, official_scores  # noqa: E402


@pytest.fixture(scope="module", params=["float32", "bfloat16"])
def loop(request):
    from transformers import AutoTokenizer, CLIPTextModelWithProjection, CLIPVisionModelWithProjection

    from litelvlm.clip import resolve_random_model
    from litelvlm.clip.attention import register
    from litelvlm.glamm import GlammPipeline

    dtype = getattr(torch, request.param)
    pipe = GlammPipeline.from_model_string("tiny-random:0", dtype=dtype)
    folder = resolve_random_model("tiny336-random:0", "hf")
    # the official stack (transformers 4.28) runs CLIP with its eager attention (litelvlm.clip.attention,
    # tested against 4.28.1's in tests/litelvlm/clip/test_attention.py), as the official numerics do
    eager = register()
    towers = (
        CLIPVisionModelWithProjection.from_pretrained(folder, dtype=dtype, attn_implementation=eager)
        .eval(),
              CLIPTextModelWithProjection.from_pretrained(folder, dtype=dtype, attn_implementation=eager)
              .eval(), AutoTokenizer.from_pretrained(folder))
    return pipe, towers


def test_transformers_preprocessing_is_the_installed_processor(loop, coco128):
    """``processor="transformers"`` (the per-expression default) is the installed transformers' default
    ``CLIPImageProcessor``; the official path is tested against transformers 4.28 in
    ``tests/litelvlm/test_clip_preprocess_official.py``."""
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


@pytest.fixture(scope="module")
def four_images(loop, coco128):
    """The first four val images of COCO-128, each with its official question sample, prepared once per
    dtype for every budget: [(image id, sample, prepared, official pixels)]."""
    from litelvlm.data import load_refer

    pipe, _ = loop
    records = load_refer(coco128, None, split="val")
    by_image: dict[int, list] = {}
    for r in records:
        by_image.setdefault(r.image_id, []).append(r)
    prepared = []
    for image_id in sorted(by_image)[:4]:
        recs = sorted(by_image[image_id], key=lambda r: r.order)
        sample = sample_official([r.sentence for r in recs], 0, image_id)
        image = recs[0].image()
        prep = pipe.with_sentences(pipe.prepare_image(image), sample.sentences, sample.turns)
        with torch.no_grad():
            pixels = pipe.clip.preprocess([image], processor=pipe.numerics.clip_preprocess)
        prepared.append((image_id, sample, prep, pixels))
    return prepared


@pytest.fixture(scope="module")
def four_official_scores(loop, four_images):
    """The official forward's two scores (``official_scores``: what ``official_keep`` ranks, the same at
    every budget) of each of :func:`four_images`, once per dtype."""
    _, (vision_tower, text_tower, text_tokenizer) = loop
    with torch.no_grad():
        return [official_scores(vision_tower, text_tower, text_tokenizer, pixels, sample.questions)
                for _, sample, _, pixels in four_images]


@pytest.mark.parametrize("budget", [576, 192, pytest.param(128, marks=pytest.mark.slow),
                                    # 128, 64: also on one image below
                                    pytest.param(64, marks=pytest.mark.slow), 7])
def test_kept_tokens_equal_the_official_clip_vision_tower(loop, four_images, four_official_scores, budget):
    pipe, _ = loop
    checked = 0
    for (image_id, sample, prep, _), scores in zip(four_images, four_official_scores, strict=True):
        assert prep.text.texts == sample.questions  # LiteLVLM embeds the formatted questions
        ours = pipe.ground(prep, "litelvlm", budget).kept_indices
        ref = official_retain(*scores, budget)   # official_keep: official_scores, then official_retain
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


@pytest.mark.parametrize("budgets", [(1, 2, 3, 7, 64, 128, 191, 192, 193, 288, 574, 575, 576),
                                     pytest.param(range(1, 577), marks=pytest.mark.slow)],
                         ids=["edges", "all"])
def test_every_budget_equals_the_official_loop(loop, coco128, budgets):
    """Every budget 1..N (N = 576) on one real image with 3 sampled questions, through the selector the
    pipeline calls: the kept indices and their order equal the official loop's, float32 and bfloat16 (the
    default suite: the edges and the paper's budgets; every K: slow)."""
    from litelvlm.data import load_refer
    from litelvlm.methods.select import select

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
        # official_keep at each budget: the official forward's scores (budget-free) once, then its rule
        scores = official_scores(vision_tower, text_tower, text_tokenizer, pixels, sample.questions)
        for budget in budgets:
            ours = select("litelvlm", prep.selector_inputs(), budget).indices
            ref = official_retain(*scores, budget)
            assert ours.tolist() == ref.tolist(), f"K={budget}"
    assert len(sample.questions) == 3 and n == 576
