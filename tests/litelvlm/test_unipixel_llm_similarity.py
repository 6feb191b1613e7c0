"""LiteLVLM's similarity part in the LLM's input space on UniPixel (``similarity="llm"``, ``eval-grounding
--clip-similarity llm``; this project's adaptation): the relevance of :mod:`litelvlm.llm.relevance` replaces
the paired CLIP's mapped patch-text similarity, and LiteLVLM's official rule (sejong-rcv/LiteLVLM
``clip_encoder.py`` L158-168, ``tests/official_litelvlm.py``) is unchanged: the lowest similarity is kept
first. The default (``clip``) is untouched.
"""

from __future__ import annotations

import json

import pytest
import torch
from PIL import Image

from litelvlm.cli import main
from litelvlm.errors import LiteLVLMError
from litelvlm.llm import relevance as rel
from litelvlm.methods.select import select
from tests.official_litelvlm import official_retain  # noqa: E402
from tests.unipixel_tiny import tiny_unipixel  # noqa: E402

MODEL = "unipixel-tiny-random:0"


@pytest.fixture(scope="module")
def pipes():
    return tiny_unipixel(), tiny_unipixel(similarity="llm")


def _image(coco128) -> Image.Image:
    return Image.open(sorted((coco128 / "images").glob("*.jpg"))[0]).convert("RGB").resize((97, 61))


def _budgets(n: int, every: bool) -> list[int]:
    return list(range(1, n + 1)) if every else sorted({1, 2, 3, n // 3, n // 2, n - 1, n})


@pytest.mark.parametrize("every", [False, pytest.param(True, marks=pytest.mark.slow)])
def test_every_budget_is_the_official_rule_on_the_llm_relevance(pipes, coco128, every):
    clip_pipe, llm_pipe = pipes
    assert llm_pipe.similarity_source == "llm" and clip_pipe.similarity_source == "clip"
    with torch.no_grad():
        prep = llm_pipe.prepare(_image(coco128), ["the person on the left"])
        mapped = prep.selector_inputs()
        relevance = rel.prompt_relevance(llm_pipe, prep)
        context = mapped.context()
        default = clip_pipe.with_sentences(prep, prep.sentences).selector_inputs()
    assert torch.equal(mapped.similarity(), relevance[None].double())
    assert default.similarity_override is None and not torch.equal(default.similarity(), mapped.similarity())
    assert torch.equal(default.context(), context)  # the context part is untouched
    n = mapped.num_patches
    for budget in _budgets(n, every):
        ours = select("litelvlm", mapped, budget).indices
        assert ours.tolist() == official_retain(context[None], relevance[None].double(),
                                                budget).tolist(), budget
    # one text: K lowest-relevance tokens fill the budget (the reversal), in ascending index order
    assert select("litelvlm", mapped, 5).indices.tolist() == sorted(
        torch.topk(relevance, 5, largest=False).indices.tolist())


def test_the_option_is_checked_and_described(pipes):
    from litelvlm.registry.families import load_pipeline

    clip_pipe, llm_pipe = pipes
    assert "similarity" not in clip_pipe.describe()["clip"]
    assert "this project's adaptation" in llm_pipe.describe()["clip"]["similarity"]
    with pytest.raises(LiteLVLMError, match="similarity must be one of clip, llm"):
        type(clip_pipe)(None, clip_pipe.processor, None, None, similarity="vit")
    with pytest.raises(LiteLVLMError, match="--clip-similarity llm is for a family"):
        load_pipeline("tiny-random:0", clip_similarity="llm")


def test_eval_grounding_clip_similarity(coco128, tmp_path, monkeypatch):
    """``--clip-similarity llm`` runs LiteLVLM on the LLM-space relevance and is recorded; the default is not
    recorded (earlier folders resume) and never computes the relevance."""
    calls = []
    real = rel.prompt_relevance

    def spy(pipe, prepared, visual=None):
        calls.append(pipe.similarity_source)
        return real(pipe, prepared, visual)

    monkeypatch.setattr(rel, "prompt_relevance", spy)
    base = ["eval-grounding", "--refer-dir", str(coco128), "--model", MODEL, "--image-ids", "34",
            "--methods", "litelvlm", "--budgets", "16"]
    assert main([*base, "--out", str(tmp_path / "clip")]) == 0 and calls == []
    assert main([*base, "--out", str(tmp_path / "llm"), "--clip-similarity", "llm"]) == 0
    assert calls and set(calls) == {"llm"}
    cfg = json.loads((tmp_path / "llm" / "config.json").read_text())
    assert cfg["clip_similarity"] == "llm" and "this project's adaptation" in cfg["paired_clip"]["similarity"]
    old = json.loads((tmp_path / "clip" / "config.json").read_text())
    assert "clip_similarity" not in old and "similarity" not in old["paired_clip"]
