"""GLaMM's referring-segmentation question and answer templates (used to wrap referring expressions)."""

from __future__ import annotations

import random

#: GLaMM's referring-segmentation questions; ``{sent}`` is the referring expression.
SEG_QUESTIONS: list[str] = [
    "Can you segment the {sent} in this image?",
    "Please segment the {sent} in this image.",
    "What is {sent} in this image? Please respond with segmentation mask.",
    "What is {sent} in this image? Please output segmentation mask.",
]

#: GLaMM's answers for a referring-segmentation question; ``[SEG]`` is the mask token.
ANSWER_LIST: list[str] = [
    "It is [SEG].",
    "Sure, [SEG].",
    "Sure, it is [SEG].",
    "Sure, the segmentation result is [SEG].",
    "[SEG].",
]


def wrap_question(sentence: str, key: int | str, seed: int = 0) -> str:
    """Wrap ``sentence`` in one of :data:`SEG_QUESTIONS`, chosen by (seed, key) alone.

    The choice depends only on the seed and a per-sentence key (e.g. ``sent_id``), so it
    does not change with ``--limit`` or the order in which sentences are processed.
    """
    template = random.Random(f"{seed}:{key}").choice(SEG_QUESTIONS)
    return template.format(sent=sentence.strip().rstrip("."))
