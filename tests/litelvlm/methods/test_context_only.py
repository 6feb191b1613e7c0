"""``litelvlm-context`` (this project's ablation): LiteLVLM's context ranking alone."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from litelvlm.methods import describe, get_method
from litelvlm.methods.litelvlm import litelvlm_select
from litelvlm.methods.select import select
from litelvlm.pruning import SelectorInputs
from tests.litelvlm.test_pruning_selectors import KEYS, SIMS, VALUES, N, Q, expected_context, hand_inputs


def test_keeps_the_highest_context_scores_first():
    inp = hand_inputs(SIMS, Q, KEYS, VALUES)
    want = np.argsort(-expected_context(), kind="stable")
    for k in range(1, N + 1):
        assert select("litelvlm-context", inp, k).indices.tolist() == want[:k].tolist()


def test_is_litelvlm_with_the_whole_budget_on_context(tiny_hf_clip):
    pix = torch.randn(1, 3, 56, 56, generator=torch.Generator().manual_seed(5))
    inp = SelectorInputs(tiny_hf_clip.trace_image(pix), tiny_hf_clip.encode_text(["a dog", "the red cup"]))
    for k in range(1, inp.vision.num_patches + 1):  # every budget 1..N
        assert torch.equal(select("litelvlm-context", inp, k).indices,
                           litelvlm_select(inp, k, context_ratio=1.0).indices)
    no_text = SelectorInputs(inp.vision, None)  # reads no text
    assert len(select("litelvlm-context", no_text, 3)) == 3


def test_is_declared_and_labelled_as_this_projects():
    m = get_method("litelvlm-context")
    assert m.stage.name == "clip" and not m.needs_text and m.schedule(7, 576, 32) == ((0, 7),)
    assert "‡" in describe("litelvlm-context") and "not in the official code" in describe("litelvlm-context")
    with pytest.raises(Exception, match="1 <= K"):
        select("litelvlm-context", hand_inputs(SIMS, Q, KEYS, VALUES), N + 1)
