"""Write ``official_prompt_ids.json``: GLaMM's RefCOCO prompts and the ids its pinned tokenizer gives them.

Run in an environment with the tokenizer stack GLaMM and LiteLVLM pin (transformers 4.28.1,
sentencepiece), NOT the project's own::

    python3 -m venv /tmp/ref428 && /tmp/ref428/bin/pip install transformers==4.28.1 sentencepiece protobuf
    numpy /tmp/ref428/bin/python tests/golden/make_official_prompt_ids.py ../shared/data

The prompt text is built as sejong-rcv/LiteLVLM @5896153 builds it (transcribed below):
``dataset/segm_datasets/RefCOCO_Segm_ds.py`` L38-40 and L106-125 (``begin_str``,
``create_conversations``), ``model/llava/conversation.py`` L53-61 and L355-364 (llava_v1,
``SeparatorStyle.TWO``), ``eval/referring_seg/infer_and_evaluate.py`` L133-140 (``<image>`` ->
``<im_start><image><im_end>``) and L189-195 (``AutoTokenizer(use_fast=False)``, pad = unk;
``--pretrained`` as in ``run_evaluation.sh``, so no tokens are added), and
``model/llava/mm_utils.py`` L18-43 (``tokenizer_image_token``). The ids come from the real
transformers 4.28.1 ``LlamaTokenizer`` on ``glamm_refseg_tokenizer/``. The test
``tests/litelvlm/glamm/test_prompts_official.py`` checks the project's prompt builder and tokenizer against
this file.
"""

from __future__ import annotations

import json
import pickle
import sys
from pathlib import Path

import transformers
from transformers import AutoTokenizer

# dataset/utils/utils.py L87-115 (sejong-rcv/LiteLVLM @5896153)
SEG_QUESTIONS = [
    "Can you segment the {class_name} in this image?",
    "Please segment {class_name} in this image.",
    "What is {class_name} in this image? Please respond with segmentation mask.",
    "What is {class_name} in this image? Please output segmentation mask.",
    "Can you segment the {class_name} in this image",
    "Please segment {class_name} in this image",
    "What is {class_name} in this image? Please respond with segmentation mask",
    "What is {class_name} in this image? Please output segmentation mask",
    "Could you provide a segmentation mask for the {class_name} in this image?",
    "Please identify and segment the {class_name} in this image.",
    "Where is the {class_name} in this picture? Please respond with a segmentation mask.",
    "Can you highlight the {class_name} in this image with a segmentation mask?",
    "Could you provide a segmentation mask for the {class_name} in this image",
    "Please identify and segment the {class_name} in this image",
    "Where is the {class_name} in this picture? Please respond with a segmentation mask",
    "Can you highlight the {class_name} in this image with a segmentation mask",
]
ANSWER_LIST = ["It is [SEG].", "Sure, [SEG].", "Sure, it is [SEG].",
               "Sure, the segmentation result is [SEG].", "[SEG]."]
SYSTEM = ("A chat between a curious human and an artificial intelligence assistant. "
          "The assistant gives helpful, detailed, and polite answers to the human's questions.")
BEGIN_STR = "The <image> provides an overview of the picture.\n"


def conversation(labels: list[str], q_idx: list[int], a_idx: list[int]) -> tuple[list[str], str]:
    """``create_conversations`` with the random choices given, then llava_v1 ``get_prompt``."""
    questions, answers = [], []
    for label, qi, ai in zip(labels, q_idx, a_idx):
        label = label.strip()
        questions.append(SEG_QUESTIONS[qi].format(class_name=label.lower()))
        answers.append(ANSWER_LIST[ai])
    messages = []
    for i, (q, a) in enumerate(zip(questions, answers)):
        messages += [("USER", BEGIN_STR + q if i == 0 else q), ("ASSISTANT", a)]
    seps = [" ", "</s>"]
    ret = SYSTEM + seps[0]
    for i, (role, message) in enumerate(messages):
        ret += role + ": " + message + seps[i % 2]
    return questions, ret.replace("<image>", "<im_start><image><im_end>")


def tokenizer_image_token(prompt: str, tokenizer, image_token_index: int = -200) -> list[int]:
    prompt_chunks = [tokenizer(chunk).input_ids for chunk in prompt.split("<image>")]

    def insert_separator(X, sep):
        return [ele for sublist in zip(X, [sep] * len(X)) for ele in sublist][:-1]

    input_ids, offset = [], 0
    if len(prompt_chunks) > 0 and len(prompt_chunks[0]) > 0 and prompt_chunks[0][0] == tokenizer.bos_token_id:
        offset = 1
        input_ids.append(prompt_chunks[0][0])
    for x in insert_separator(prompt_chunks, [image_token_index] * (offset + 1)):
        input_ids.extend(x[offset:])
    return input_ids


def main(shared: Path) -> None:
    tok = AutoTokenizer.from_pretrained(str(shared / "glamm_refseg_tokenizer"), model_max_length=1536,
                                        padding_side="right", use_fast=False)
    tok.pad_token = tok.unk_token
    seg = tok("[SEG]", add_special_tokens=False).input_ids[0]
    items = json.loads((shared / "refcoco_unc_expressions" / "val.json").read_text())["items"]
    human = [it["text"] for it in items[:: max(1, len(items) // 60)]][:60]
    with open(shared / "coco128_refer" / "refs(unc).p", "rb") as f:
        refs = pickle.load(f)
    generated = [s["sent"] for r in refs[:40] for s in r["sentences"]][:30]
    odd = ["  The Man in RED  ", "guy's shirt, left", "2nd from right.", "person [SEG] near",
           "cafe\u0301 sign", "dog\non the left", "A", "x" * 120]
    sentences = human + generated + odd
    cases = []
    for i in range(0, len(sentences), 3):
        labels = sentences[i:i + 3]
        q_idx = [(i + j) % len(SEG_QUESTIONS) for j in range(len(labels))]
        a_idx = [(i // 3 + j) % len(ANSWER_LIST) for j in range(len(labels))]
        for n in {1, len(labels)}:
            questions, prompt = conversation(labels[:n], q_idx[:n], a_idx[:n])
            ids = tokenizer_image_token(prompt, tok)
            cases.append({"sentences": labels[:n], "question_index": q_idx[:n], "answer_index": a_idx[:n],
                          "questions": questions, "prompt": prompt, "input_ids": ids,
                          "seg_positions": [k for k, t in enumerate(ids) if t == seg]})
    out = {"transformers": transformers.__version__, "tokenizer": "glamm_refseg_tokenizer (shared data)",
           "seg_token_id": seg, "cases": cases}
    path = Path(__file__).with_name("official_prompt_ids.json")
    path.write_text(json.dumps(out, indent=0, ensure_ascii=False) + "\n")
    print(f"{len(cases)} prompts -> {path}")


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "../shared/data"))
