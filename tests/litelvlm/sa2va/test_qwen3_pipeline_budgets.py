"""Every method Sa2VA-Qwen3-VL offers at every budget 1..N on a tiny image (N = 6 merged tokens): each run
gives a mask of the image's size, and its LLM sequence is the DeepStack rule's -- a selection at the LLM input
runs as transformers' ``Qwen3VLTextModel`` given the kept tokens' own features at their rows
(``visual_pos_masks``, ``deepstack_visual_embeds``: this project's adaptation, through the official module), a
cut inside the LLM as the loop of :func:`tests.litelvlm.sa2va.test_deepstack.reference_cut`. The default run
takes K = 1 and K = N of two methods (:data:`DEFAULT`); every method at every K is marked slow."""

from __future__ import annotations

import pytest
import torch

from tests.fixtures.images import noise_image
from tests.litelvlm.sa2va.test_deepstack import norm_input, reference_cut

#: pixel bounds giving a 2 x 3 merged grid on a 50 x 90 image (factor 32)
BOUNDS = (4 * 32 * 32, 8 * 32 * 32)
#: the methods whose one cut inside the LLM keeps ``kept_indices`` from ``prune_layer`` on (the rest of the
#: in-LLM methods cut in stages, past the DeepStack layers at their defaults)
ONE_CUT = {"fastv", "dart", "random-deep", "ivc-prune"}
#: the default run's methods: at the LLM input, merging through Qwen3-VL's tower (a Qwen2.5-VL variant); a cut
#: inside the LLM in test_deepstack.py, the paired CLIP's in test_qwen3_pipeline_official.py
DEFAULT = ("divprune", "tome")


@pytest.fixture(scope="module")
def small(qwen3_tiny):
    """The tiny pipeline at small pixel bounds (restored after the module), a prepared 50 x 90 image."""
    pipe = qwen3_tiny.pipe
    saved = pipe.min_pixels, pipe.max_pixels
    pipe.min_pixels, pipe.max_pixels = BOUNDS
    try:
        prep = pipe.prepare(noise_image(50, 90, seed=9), ["the dog on the left"])
        assert pipe.num_visual(prep) == 6
        yield qwen3_tiny.parts, pipe, prep
    finally:
        pipe.min_pixels, pipe.max_pixels = saved


def offered(pipe) -> list[str]:
    from litelvlm.methods import available_methods

    return [m for m in available_methods() if pipe.method_error(m) is None and m != "saliency"]


def input_reference(parts, pipe, prep, out) -> torch.Tensor:
    """The official text model on the selection's LLM input (the kept tokens at their rows with their own
    DeepStack features, at the positions of the run's rule): its final norm's input, which the mask head
    reads by default."""
    kept, k = out.kept_indices.cpu(), len(out.kept_indices)
    layout = pipe.layout(prep, k)
    pos = pipe.kept_positions(prep, kept) if out.position_rule == "keep" else layout.position_ids
    rows = torch.zeros(1, layout.seq_len, dtype=torch.bool)
    rows[0, layout.image_start:layout.image_start + k] = True
    with torch.no_grad():
        return norm_input(
            parts.qwen.model.language_model, inputs_embeds=pipe.sequence_embeds(prep, prep.visual[kept]),
            position_ids=pos, attention_mask=torch.ones(1, layout.seq_len, dtype=torch.long),
            visual_pos_masks=rows, deepstack_visual_embeds=[f[kept] for f in prep.deepstack])


def check(parts, pipe, prep, method: str, k: int) -> None:
    if pipe.spec(method).baseline and k != pipe.num_visual(prep):
        return                                                   # the baseline keeps all N
    out = pipe.ground(prep, method, k)
    assert out.masks.shape == (1, 50, 90) and torch.isfinite(out.mask_logits).all(), (method, k)
    sel = out.selection
    single = sel.features is None and bool((sel.indices >= 0).all())
    if single and out.prune_layer == 0:
        ref = input_reference(parts, pipe, prep, out)
        assert torch.equal(out.seg_hidden, ref[0, out.seg_positions]), (method, k)
    elif single and method in ONE_CUT:
        with torch.no_grad():
            ref = reference_cut(parts.qwen.model.language_model, prep, pipe, out.kept_indices.cpu(),
                                out.prune_layer)
        assert torch.equal(out.seg_hidden, ref[0, out.seg_positions]), (method, k)


def test_every_method_at_the_smallest_and_the_whole_budget(small):
    parts, pipe, prep = small
    assert set(DEFAULT) <= set(offered(pipe))
    for method in DEFAULT:
        for k in (1, 6):
            check(parts, pipe, prep, method, k)


@pytest.mark.slow
def test_every_method_at_every_budget(small):
    parts, pipe, prep = small
    for method in offered(pipe):
        for k in range(1, 7):
            check(parts, pipe, prep, method, k)
