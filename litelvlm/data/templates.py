"""GLaMM's referring-segmentation question and answer templates, as its RefCOCO evaluation uses them.

Transcribed from ``dataset/utils/utils.py`` (``SEG_QUESTIONS``, ``ANSWER_LIST``) of the official
code (sejong-rcv/LiteLVLM, = mbzuai-oryx/groundingLMM); the referring expression fills
``{class_name}`` after ``strip()`` and ``lower()``, exactly as ``create_conversations`` does it.
"""

from __future__ import annotations

import random

#: GLaMM's 16 referring-segmentation questions; ``{class_name}`` is the referring expression.
SEG_QUESTIONS: list[str] = [
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

#: GLaMM's 5 answers to a referring-segmentation question; ``[SEG]`` is the mask token.
ANSWER_LIST: list[str] = [
    "It is [SEG].",
    "Sure, [SEG].",
    "Sure, it is [SEG].",
    "Sure, the segmentation result is [SEG].",
    "[SEG].",
]


def format_question(template: str, sentence: str) -> str:
    """``template`` filled with ``sentence.strip().lower()`` (GLaMM's ``create_conversations``)."""
    return template.format(class_name=sentence.strip().lower())


def wrap_question(sentence: str, key: int | str, seed: int = 0) -> str:
    """Wrap ``sentence`` in one of :data:`SEG_QUESTIONS`, chosen by (seed, key) alone.

    For the CLIP studies' question-wrapped texts (this project's option, not a GLaMM protocol):
    the choice depends only on the seed and a per-sentence key (e.g. ``sent_id``), so it does
    not change with ``--limit`` or the order in which sentences are processed.
    """
    return format_question(random.Random(f"{seed}:{key}").choice(SEG_QUESTIONS), sentence)
