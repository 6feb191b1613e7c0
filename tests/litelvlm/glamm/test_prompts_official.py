"""The official RefCOCO prompt, tokenization, protocol and LiteLVLM-in-the-loop, against the official code.

Official code: sejong-rcv/LiteLVLM @ 5896153a (commit 5896153, "Update README.md"), which is
mbzuai-oryx/groundingLMM plus LiteLVLM's pruning hooks. Each transcription below cites its file and
lines. Token ids come from ``tests/golden/official_prompt_ids.json``, written by the real
transformers 4.28.1 slow ``LlamaTokenizer`` (``tests/golden/make_official_prompt_ids.py``).
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest
import torch

from litelvlm.data.templates import ANSWER_LIST, SEG_QUESTIONS, format_question
from litelvlm.glamm.prompts import IMAGE_PLACEHOLDER, build_prompt, seg_predictor_positions, tokenize_prompt
from litelvlm.glamm.protocol import image_seed, official_prompt, sample_official
from litelvlm.glamm.tokenizer import load_tokenizer, prompt_encoder

GOLDEN = json.loads((Path(__file__).parents[2] / "golden" / "official_prompt_ids.json").read_text())


@pytest.fixture(scope="module")
def glamm_tokenizer(shared_data):
    return load_tokenizer(shared_data / "glamm_refseg_tokenizer")


# -- 1. prompt text and token ids -------------------------------------------------------------------
def test_golden_file_was_made_by_the_pinned_tokenizer():
    assert GOLDEN["transformers"] == "4.28.1" and len(GOLDEN["cases"]) >= 60


@pytest.mark.parametrize("case", GOLDEN["cases"],
                         ids=lambda c: f"{len(c['sentences'])}x{c['question_index'][0]}")
def test_prompt_text_equals_the_official_conversation(case):
    turns = [(SEG_QUESTIONS[q].format(class_name=s.strip().lower()), ANSWER_LIST[a])
             for s, q, a in zip(case["sentences"], case["question_index"], case["answer_index"])]
    assert [q for q, _ in turns] == case["questions"]
    assert build_prompt(turns) == case["prompt"]


def test_token_ids_equal_transformers_428_on_the_real_vocabulary(glamm_tokenizer):
    enc = prompt_encoder(glamm_tokenizer)
    for case in GOLDEN["cases"]:
        ids = tokenize_prompt(enc, case["prompt"]).tolist()
        assert ids == case["input_ids"], case["prompt"]


def test_seg_id_is_read_from_the_tokenizer(glamm_tokenizer):
    from litelvlm.glamm.tokenizer import seg_token_id

    assert seg_token_id(glamm_tokenizer) == GOLDEN["seg_token_id"] == 32004
    assert glamm_tokenizer.pad_token == glamm_tokenizer.unk_token == "<unk>"


def test_seg_is_tokenized_as_glamm_trained_on(glamm_tokenizer):
    """``... It is [SEG].</s>`` ends ``▁is [SEG] ▁. </s>`` (today's transformers: ``▁is ▁ [SEG] .``)."""
    enc = prompt_encoder(glamm_tokenizer)
    pieces = glamm_tokenizer.convert_ids_to_tokens(enc("ASSISTANT: It is [SEG].</s>USER: next"))
    assert pieces[pieces.index("[SEG]") - 1:pieces.index("[SEG]") + 3] == ["▁is", "[SEG]", "▁.", "</s>"]
    plain = glamm_tokenizer.convert_ids_to_tokens(glamm_tokenizer("It is [SEG].").input_ids)
    assert plain != glamm_tokenizer.convert_ids_to_tokens(enc("It is [SEG].")), \
        "transformers now tokenizes like 4.28: the PromptEncoder may be unnecessary"


def _official_seg_positions(input_ids: torch.Tensor, seg: int, num_visual: int) -> list[int]:
    """``GLaMMForCausalLM._create_pruned_seg_token_mask`` (model/GLaMM.py L169-175), then nonzero."""
    input_ids = input_ids[None]
    mask = input_ids[:, 1:] == seg
    hidden_len = input_ids.shape[1] - 1 + num_visual  # output_hidden_states[0].shape[1]
    vision_token = hidden_len - input_ids[:, 1:].shape[1]
    m = torch.cat([torch.zeros((mask.shape[0], vision_token - 1)).bool(), mask,
                   torch.zeros((mask.shape[0], 1)).bool()], dim=1)
    return m[0].nonzero().flatten().tolist()


@pytest.mark.parametrize("num_visual", [576, 192, 64, 1])
def test_seg_predicting_positions_equal_glamms_mask(num_visual):
    seg = GOLDEN["seg_token_id"]
    for case in GOLDEN["cases"][:12]:
        ids = torch.tensor(case["input_ids"])
        ours = seg_predictor_positions(ids, num_visual, seg).tolist()
        assert ours == _official_seg_positions(ids, seg, num_visual)
        assert len(ours) == len(case["seg_positions"])


# -- 2. the official protocol ---------------------------------------------------------------------
def _official_sample(sents: list[str], s: int):
    """``ReferSegmDataset.__getitem__`` L127-169 and ``create_conversations`` L106-114
    (dataset/segm_datasets/RefCOCO_Segm_ds.py), with the global generators seeded by ``s``; the
    evaluation builds the dataset with one ``refer_segm_data`` and ``validation=True``
    (eval/referring_seg/infer_and_evaluate.py L336-337), so L134 draws nothing."""
    np.random.seed(s)
    random.seed(s)
    refer_seg_ds_list = ["refcoco"]
    dataset_idx = random.randint(0, len(refer_seg_ds_list) - 1)  # L128
    assert refer_seg_ds_list[dataset_idx] == "refcoco"
    num_classes_per_sample = 3
    if len(sents) >= num_classes_per_sample:
        sampled_inds = np.random.choice(list(range(len(sents))), size=num_classes_per_sample, replace=False)
    else:
        sampled_inds = list(range(len(sents)))
    sampled_sents = np.vectorize(sents.__getitem__)(sampled_inds).tolist()
    questions, answers = [], []
    for label in sampled_sents:
        label = label.strip()
        assert len(label.split("||")) == 1
        question_template = random.choice(SEG_QUESTIONS)
        questions.append(question_template.format(class_name=label.lower()))
        answers.append(random.choice(ANSWER_LIST))
    return [int(i) for i in sampled_inds], sampled_sents, questions, answers


@pytest.mark.parametrize("n", [1, 2, 3, 4, 5, 7, 12])
def test_protocol_sample_equals_the_official_draws(n):
    sents = [f" The Thing number {i}. " for i in range(n)]
    for seed in range(3):
        for image_id in (9, 25, 581929):
            ours = sample_official(sents, seed, image_id)
            idx, picked, questions, answers = _official_sample(sents, image_seed(seed, image_id))
            assert (ours.indices, ours.sentences, ours.questions, ours.answers) == (
                idx, picked, questions, answers)


def test_protocol_sample_consumes_the_dataset_draw_first():
    """L128's ``randint(0, 0)`` advances Python's generator before the questions are drawn: without
    it the same seed would give other questions and answers."""
    sents = [f"thing {i}" for i in range(5)]
    changed = 0
    for image_id in range(20):
        ours = sample_official(sents, 0, image_id)
        rng = random.Random(image_seed(0, image_id))
        without = []
        for i in ours.indices:
            without.append((format_question(rng.choice(SEG_QUESTIONS), sents[i]), rng.choice(ANSWER_LIST)))
        changed += ours.turns != without
    assert changed == 20


def test_official_prompt_is_inspectable(glamm_tokenizer):
    sents = ["man in red", "the dog on the left", "bowl", "left guy"]
    sample, ids, pos = official_prompt(glamm_tokenizer, sents, seed=0, image_id=9, num_visual=576)
    assert (ids == IMAGE_PLACEHOLDER).sum() == 1 and len(pos) == len(sample.sentences) == 3
    assert sample.prompt.count("provides an overview of the picture.\n") == 1
    assert pos.tolist() == _official_seg_positions(ids, 32004, 576)
