"""Sa2VA-Qwen3-VL's ``seg_state`` (:data:`litelvlm.sa2va.qwen3_pipeline.SEG_STATES`): the default reads the
``[SEG]`` row's input to the final norm (the official state under transformers 4.57,
``test_qwen3_pipeline_official.py``), ``normed`` its output, on every path, the methods pruning inside the LLM
included (their own calls of the final norm come before the last one)."""

from __future__ import annotations

import pytest
import torch

from litelvlm.errors import LiteLVLMError
from tests.fixtures.images import noise_image


@pytest.fixture(scope="module")
def normed(qwen3_tiny):
    from litelvlm.registry.families import load_pipeline

    return load_pipeline(str(qwen3_tiny.folder), seg_state="normed")


def test_describe_labels_the_state_and_a_wrong_one_is_refused(qwen3_tiny, normed):
    from litelvlm.registry.families import load_pipeline

    pipe = qwen3_tiny.pipe
    got, theirs = pipe.describe(), normed.describe()
    assert (got["seg_state"], pipe.abilities.seg_reads) == ("unnormed", "norm_input")
    assert "before the final RMSNorm" in got["mask_head"] and "4.57" in got["mask_head"]
    assert (theirs["seg_state"], normed.abilities.seg_reads) == ("normed", "final")
    assert "this project's option" in theirs["mask_head"]
    assert type(pipe).abilities.seg_reads == "norm_input"          # the class's default is the official one
    with pytest.raises(LiteLVLMError, match="seg_state must be one of unnormed, normed; got 'rms'"):
        load_pipeline(str(qwen3_tiny.folder), seg_state="rms")
    with pytest.raises(LiteLVLMError, match="seg_state applies to Sa2VA-Qwen3-VL"):
        load_pipeline("sa2va-tiny-random:0", seg_state="normed")


@pytest.mark.parametrize("method,k", [("fastv", 6), ("dart", 6), ("divprune", 5)])
def test_pruned_runs_read_the_same_state(qwen3_tiny, normed, method, k):
    """A method inside the LLM (FastV; DART, which calls the final norm at its own layer first) or at its
    input (DivPrune): the default's state through the final norm is the ``normed`` option's, the masks
    follow."""
    pipe = qwen3_tiny.pipe
    image = noise_image(91, 137, seed=7)
    mine, theirs = (p.ground(p.prepare(image, ["the cat"]), method, k) for p in (pipe, normed))
    assert torch.equal(mine.kept_indices, theirs.kept_indices)
    with torch.no_grad():
        torch.testing.assert_close(pipe.language_model.norm(mine.seg_hidden), theirs.seg_hidden, atol=1e-6,
                                   rtol=0)
    assert not torch.allclose(mine.seg_hidden, theirs.seg_hidden)
    with torch.no_grad():
        again = pipe.seg_prompts(pipe.language_model.norm(mine.seg_hidden))
    torch.testing.assert_close(again, theirs.prompt_embeddings, atol=1e-5, rtol=1e-5)
