"""The relevance in the LLM's input space (:mod:`litelvlm.llm.relevance`) against a statement-by-statement
transcription of OpenVINO GenAI's CDPruner port for Qwen2-VL / Qwen2.5-VL / Qwen3-VL.

openvinotoolkit/openvino.genai at commit da1db864d2bc1a265e9a036f5b57ef13f0e86c2c:

* ``src/cpp/src/visual_language/vision_token_pruning_processor.cpp`` L160-222 (``extract_text_features``): the
  mean of the prompt's token embeddings outside the vision region (:func:`official_extract_text_features`);
* ``src/cpp/src/visual_language/cdpruner/conditional_kernel.cpp`` L405-445
  (``create_conditional_kernel_model``, "RELEVANCE COMPUTATION") and L487-510
  (``create_min_max_normalize_ops``), the OV model the kernel builder runs (:func:`official_ov_relevance`);
  ``cdpruner_config.hpp`` L36-40: ``numerical_threshold = 1e-6``, ``use_negative_relevance = false``.

The C++ loops and OV ops are transcribed as torch statements on (B, N, D) / (M, D) float32 tensors, one
statement per op. The CPU fallback (``relevance_calculator.cpp`` L117-157) normalises the range differently
(no ``eps`` added, a range below ``eps`` set to 1); it runs only when the OV model fails, and is transcribed
too, to show where it differs.
"""

from __future__ import annotations

import pytest
import torch
from PIL import Image

from litelvlm.llm import relevance as rel

OPENVINO_COMMIT = "da1db864d2bc1a265e9a036f5b57ef13f0e86c2c"
from tests.unipixel_tiny import tiny_unipixel  # noqa: E402

MODEL = "unipixel-tiny-random:0"
EPS = 1e-6  # cdpruner_config.hpp L36: numerical_threshold


# ----------------------------------------------------------------------------------------------
# Official code, transcribed
# ----------------------------------------------------------------------------------------------

def official_extract_text_features(text_embeds, input_ids, image_pad_token_id, vision_start_token_id,
                                   vision_end_token_id, video_pad_token_id):
    """vision_token_pruning_processor.cpp L161-222; ``text_embeds`` (1, S, h) float32, ``input_ids`` (1,
    S)."""
    instruction_indices = []
    seq_len = input_ids.shape[1]
    inside_vision_region = False
    for i in range(seq_len):
        current_token = int(input_ids[0, i])
        if current_token == vision_start_token_id:
            inside_vision_region = True
            continue
        if current_token == vision_end_token_id:
            inside_vision_region = False
            continue
        if inside_vision_region or current_token == image_pad_token_id or (
                video_pad_token_id >= 0 and current_token == video_pad_token_id):
            continue
        instruction_indices.append(i)
    if not instruction_indices:
        return torch.zeros(1, text_embeds.shape[-1])
    hidden_size = text_embeds.shape[-1]
    avg_data = torch.zeros(1, hidden_size)
    for idx in instruction_indices:
        avg_data[0] += text_embeds[0, idx]
    num_tokens = float(len(instruction_indices))
    avg_data /= num_tokens
    return avg_data


def official_min_max_normalize_ops(x, eps=EPS):
    """conditional_kernel.cpp L487-510."""
    min_vals = torch.amin(x, dim=1, keepdim=True)
    max_vals = torch.amax(x, dim=1, keepdim=True)
    value_range = max_vals - min_vals
    range_with_eps = value_range + eps
    shifted = x - min_vals
    return shifted / range_with_eps


def official_ov_relevance(visual_input, text_input, use_negative_relevance=False, eps=EPS):
    """conditional_kernel.cpp L405-445: (B, N, D) visual and (M, D) text features -> (B, N) relevance scores.
    ``NormalizeL2(x, axes, eps, EpsMode::ADD)`` is ``x / sqrt(sum(x^2) + eps)``."""
    visual_l2_norm = visual_input / torch.sqrt(torch.sum(visual_input ** 2, dim=2, keepdim=True) + eps)
    text_l2_norm = text_input / torch.sqrt(torch.sum(text_input ** 2, dim=1, keepdim=True) + eps)
    text_transposed = text_l2_norm.permute(1, 0)
    text_visual_similarity = torch.matmul(visual_l2_norm, text_transposed)
    mean_similarity = torch.mean(text_visual_similarity, dim=2, keepdim=False)
    processed_mean = mean_similarity * -1.0 if use_negative_relevance else mean_similarity
    return official_min_max_normalize_ops(processed_mean, eps)


def official_fallback_min_max(x, eps=EPS):
    """relevance_calculator.cpp L117-157 (the CPU fallback's min-max; rows are batch elements)."""
    out = torch.empty_like(x)
    for b in range(x.shape[0]):
        min_val, max_val = float(x[b].min()), float(x[b].max())
        value_range = max_val - min_val
        if value_range < eps:
            value_range = 1.0
        out[b] = (x[b] - min_val) / value_range
    return out


# ----------------------------------------------------------------------------------------------
# On tensors
# ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("negative", [False, True])
@pytest.mark.parametrize("m", [1, 3])
def test_relevance_equals_the_ov_model(negative, m):
    g = torch.Generator().manual_seed(m)
    visual, text = torch.randn(1, 77, 40, generator=g), torch.randn(m, 40, generator=g)
    ours = rel.llm_relevance(visual[0], text, negative=negative)
    official = official_ov_relevance(visual, text, negative)[0]
    torch.testing.assert_close(ours, official, rtol=0, atol=2e-7)
    assert torch.equal(torch.argsort(ours, stable=True), torch.argsort(official, stable=True))
    assert float(ours.min()) == 0.0 and 0.99999 < float(ours.max()) < 1.0  # (max - min) / (max - min + eps)


def test_the_fallback_only_differs_in_the_range():
    """The CPU fallback's scores are the OV model's times ``(range + eps) / range``: the same order."""
    g = torch.Generator().manual_seed(5)
    visual, text = torch.randn(1, 50, 24, generator=g), torch.randn(1, 24, generator=g)
    v = visual / torch.sqrt((visual ** 2).sum(-1, keepdim=True) + EPS)
    t = text / torch.sqrt((text ** 2).sum(-1, keepdim=True) + EPS)
    fallback = official_fallback_min_max(torch.matmul(v, t.t()).mean(-1))
    ours = rel.llm_relevance(visual[0], text)
    torch.testing.assert_close(ours, fallback[0], rtol=1e-5, atol=1e-7)
    assert torch.equal(torch.argsort(ours), torch.argsort(fallback[0]))


def test_instruction_rows_and_features_on_hand_made_ids():
    # 0: text, 9: <|vision_start|>, 7: pads, 8: <|vision_end|>, then the instruction and a teacher-forced
    # answer
    ids = torch.tensor([1, 2, 9, 7, 7, 7, 8, 3, 4, 5, 6])
    types = torch.tensor([0, 0, 0, 2, 2, 2, 0, 0, 0, 0, 0])
    assert rel.instruction_rows(ids, types).tolist() == [0, 1, 7, 8, 9, 10]
    assert rel.instruction_rows(ids, types, prompt_len=9).tolist() == [0, 1, 7, 8]
    embeds = torch.randn(1, 11, 6)
    official = official_extract_text_features(embeds, ids[None], -1, 9, 8, 7)
    torch.testing.assert_close(rel.instruction_features(embeds[0, rel.instruction_rows(ids, types)]),
                               official)
    assert torch.equal(rel.instruction_features(torch.empty(0, 6)), official_extract_text_features(
        embeds[:, 2:7], ids[None, 2:7], -1, 9, 8, 7))  # no instruction token: a zero row


# ----------------------------------------------------------------------------------------------
# On the tiny UniPixel (a real COCO image, odd sizes)
# ----------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def pipe():
    return tiny_unipixel()


def coco_image(coco128, size=None) -> Image.Image:
    image = Image.open(sorted((coco128 / "images").glob("*.jpg"))[0]).convert("RGB")
    return image if size is None else image.resize(size)


def _official_on_prompt(pipe, prep):
    """OpenVINO's relevance of ``prep``'s merged tokens, from the official GENERATION prompt of the same
    sentence (what OpenVINO prefills), with the tokenizer's special-token ids."""
    tok = pipe.processor.tokenizer
    gen = pipe.with_sentences(prep, prep.sentences, answer="generate")
    ids = gen.input_ids[None]
    embeds = pipe.language_model.embed_tokens(ids.to(pipe.device)).float().cpu()
    text = official_extract_text_features(embeds, ids, tok.convert_tokens_to_ids("<|image_pad|>"),
                                          tok.convert_tokens_to_ids("<|vision_start|>"),
                                          tok.convert_tokens_to_ids("<|vision_end|>"),
                                          tok.convert_tokens_to_ids("<|video_pad|>"))
    return official_ov_relevance(prep.visual.float().cpu()[None], text)[0]


@pytest.mark.parametrize("size",
                         [(97, 61), pytest.param(None, marks=pytest.mark.slow), pytest.param((203, 149),
                                                                                                  marks=pytest
                                                                                                     .mark
                                                                                                     .slow)])
def test_pipeline_relevance_equals_openvino(pipe, coco128, size):
    """The teacher-forced prompt (this project's) gives the relevance of the official generation prompt: its
    answer is no part of the instruction; the scores are OpenVINO's within float32 rounding, their order
    identical."""
    with torch.no_grad():
        prep = pipe.prepare(coco_image(coco128, size), ["the person on the left"])
        assert prep.answer == "teacher-forced" and prep.prompt_len < len(prep.input_ids)
        gen = pipe.with_sentences(prep, prep.sentences, answer="generate")
        assert gen.prompt_len is None and prep.input_ids[:prep.prompt_len].tolist() == gen.input_ids.tolist()
        ours, official = rel.prompt_relevance(pipe, prep), _official_on_prompt(pipe, prep)
        assert torch.equal(ours, rel.prompt_relevance(pipe, gen))
    assert ours.shape == (pipe.num_visual(prep),) and float(ours.max() - ours.min()) > 0.5
    torch.testing.assert_close(ours.cpu(), official, rtol=0, atol=1e-6)
    assert torch.equal(torch.argsort(ours.cpu(), stable=True), torch.argsort(official, stable=True))


def test_relevance_depends_on_the_sentence(pipe, coco128):
    image = coco_image(coco128, (97, 61))
    with torch.no_grad():
        prep = pipe.prepare(image, ["the person on the left"])
        a = rel.prompt_relevance(pipe, prep)
        b = rel.prompt_relevance(pipe, pipe.with_sentences(prep, ["a red umbrella"]))
    assert not torch.equal(a, b)
