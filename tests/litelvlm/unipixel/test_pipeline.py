"""The ``unipixel`` family on the family contract: ``UniPixelPipeline`` against UniPixel's own mask path on
random weights of the tiny preset, its M-RoPE positions against UniPixel's pinned transformers, and every
method that acts with the LLM at every budget.

UniPixel's path (PolyU-ChenLab/UniPixel @5c8e941, ``unipixel/model/qwen2_5_vl.py``): the stock Qwen2.5-VL
forward over the protocol's inputs; ``cache_state_hook`` (L21-22) on ``language_model.norm`` (L52) keeps the
final norm's input; ``seg_head`` on it (L300-301); the rows where ``input_ids[..., 1:] == seg_token_id``
(L343-346); SAM 2 on frame 0 (L361-366, the adapter tested in ``tests/litelvlm/unipixel/test_head.py``).
Transcribed below in :func:`official_masks`.
"""

from __future__ import annotations

import pytest
import torch
from PIL import Image

from litelvlm.errors import LiteLVLMError
from tests.fixtures.images import noise_image as _image
from tests.official_qwen_rope import get_rope_index as official_rope_index  # noqa: E402

#: the methods that act with the LLM and run on this family (IVC-Prune as its Qwen2.5-VL variant; SparseVLM
#: needs a rule for multi-axis positions first: refused, tested below)
LLM_METHODS = ("none", "fastv", "dart", "divprune", "llm-attention", "ivc-prune")


@pytest.fixture(scope="module")
def pipe():
    from litelvlm.registry.families import load_pipeline

    p = load_pipeline("unipixel-tiny-random:0")
    # an object present, so masks are not the -1024 of an absent object (as in test_unipixel_head)
    with torch.no_grad():
        p.sam2.model.mask_decoder.pred_obj_score_head.proj_out.bias += 5.0
    return p


@pytest.fixture(scope="module")
def prep(pipe):
    return pipe.prepare(_image(97, 131), ["The dog on the left."])


def official_masks(pipe, image: Image.Image, expression: str):
    """UniPixel's own chain on the stock model: (norm input at the seg rows, seg tokens, mask logits)."""
    from litelvlm.unipixel.protocol import prepare_inputs

    inputs = prepare_inputs(pipe.processor, image, expression, answer="teacher-forced").inputs
    model = pipe.qwen
    state = {}

    def cache_state_hook(module, inputs, outputs=None):  # qwen2_5_vl.py L21-22
        state["state"] = inputs[0] if isinstance(inputs, tuple) else inputs

    handle = model.model.language_model.norm.register_forward_pre_hook(cache_state_hook)  # L52
    try:
        with torch.no_grad():
            model(**{k: v for k, v in inputs.items()}, use_cache=False)
    finally:
        handle.remove()
    input_ids = inputs["input_ids"]
    seg_tokens_all = pipe.seg_head(state["state"])  # L300-301 (the reshape is the head's own)
    shift_inputs = input_ids[..., 1:].contiguous()  # L343-346
    inds = torch.where(shift_inputs[0] == pipe.seg_token_id)[0]
    seg_tokens = seg_tokens_all[0][inds]
    sam = pipe.sam2
    with torch.no_grad():
        masks = sam.decode(sam.encode_image(sam.preprocess(image)), seg_tokens, (image.height, image.width))
    return state["state"][0, inds], seg_tokens, masks.logits.float()


@pytest.mark.parametrize("size", [(97, 131), (61, 200), (300, 45)])
def test_unpruned_ground_equals_unipixel(pipe, size):
    image = _image(*size, seed=size[0])
    prep = pipe.prepare(image, ["a red umbrella."])
    with torch.no_grad():
        out = pipe.ground(prep, "none")
    hidden, tokens, logits = official_masks(pipe, image, "a red umbrella.")
    assert out.seg_hidden.shape == hidden.shape and out.seg_positions.numel() == 1
    assert torch.allclose(out.seg_hidden, hidden, atol=1e-5, rtol=1e-5)
    assert torch.allclose(out.prompt_embeddings, tokens, atol=1e-5, rtol=1e-5)
    assert out.mask_logits.shape == logits.shape == (1, *size)
    assert torch.allclose(out.mask_logits, logits, atol=1e-4, rtol=1e-4)
    assert torch.equal(out.masks, logits > 0)
    assert out.masks.any()  # the object-score nudge makes a non-trivial mask


def test_positions_equal_unipixels_transformers(pipe, prep):
    """All N tokens: our layout's 3-D ids are those of transformers 4.53's ``get_rope_index`` (UniPixel's
    pin)."""
    n = pipe.num_visual(prep)
    ours = pipe.layout(prep, n).position_ids.cpu()
    want, _ = official_rope_index(pipe.qwen.model, prep.input_ids[None], image_grid_thw=None,
                                  video_grid_thw=prep.grid_thw, second_per_grid_ts=prep.second_per_grid_ts)
    assert ours.shape == (3, 1, len(prep.input_ids))
    assert torch.equal(ours, want)
    s = pipe.layout(prep, n).image_start
    t, h, w = (int(v) for v in prep.grid_thw[0])
    assert torch.equal(ours[1, 0, s:s + n] - s, torch.arange(h // 2).repeat_interleave(w // 2))  # rows
    assert torch.equal(ours[2, 0, s:s + n] - s, torch.arange(w // 2).repeat(h // 2))  # columns


def test_renumbered_layout_is_a_plain_sequence(pipe, prep):
    lay = pipe.layout(prep, 5)
    assert lay.seq_len == len(prep.input_ids) - pipe.num_visual(prep) + 5
    assert torch.equal(lay.position_ids.cpu(), torch.arange(lay.seq_len).view(1, 1, -1).expand(3, 1, -1))
    with pytest.raises(LiteLVLMError, match="num_visual"):
        pipe.layout(prep, 0)


@pytest.mark.parametrize("method", LLM_METHODS)
def test_every_llm_method_at_every_budget(pipe, prep, method):
    """Every budget 1..N (a stride of them for the slower methods): K visual tokens reach the LLM (or its
    layers after the pruning one), one mask of the image's size, finite logits, the positions rule
    recorded."""
    n = pipe.num_visual(prep)
    text = len(prep.input_ids) - n
    budgets = [n] if method == "none" else sorted(
        {1, 2, n - 1, n, *range(3, n, 7 if method in ("fastv", "divprune", "ivc-prune") else 23)})
    for k in budgets:
        with torch.no_grad():
            out = pipe.ground(prep, method, k)
        assert out.seq_len == text + k, (method, k)
        assert out.masks.shape == (1, 97, 131) and torch.isfinite(out.mask_logits).all()
        assert out.position_rule == "keep"
        assert out.budget == k


def test_kept_tokens_keep_their_3d_positions(pipe, prep):
    """``positions="official"`` on this family keeps each kept token's M-RoPE ids (this project's adaptation);
    ``renumber`` differs from it and from no pruning."""
    n = pipe.num_visual(prep)
    with torch.no_grad():
        keep = pipe.ground(prep, "divprune", 17)
        again = pipe.ground(prep, "divprune", 17, positions="keep")
        renum = pipe.ground(prep, "divprune", 17, positions="renumber")
    assert keep.position_rule == "keep" and renum.position_rule == "renumber"
    assert torch.equal(keep.mask_logits, again.mask_logits)
    assert not torch.equal(keep.seg_hidden, renum.seg_hidden)
    pos = pipe.kept_positions(prep, keep.kept_indices)
    full = pipe.layout(prep, n).position_ids
    s = pipe.layout(prep, n).image_start
    assert torch.equal(pos[..., s:s + 17], full[..., s + keep.kept_indices.to(full.device)])


@pytest.mark.parametrize(("method", "options", "reason"), [
    ("clip-grid-only", {}, "per-token scores"),
    ("one-axis-only", {"layers": (0, 1), "counts": (16, 8)}, "multi-axis positions")])
def test_methods_not_offered_yet_are_refused_with_a_reason(pipe, prep, method, options, reason,
                                                           unoffered_methods):
    with pytest.raises(LiteLVLMError, match=reason):
        pipe.ground(prep, method, 8, **options)


def test_one_expression_per_prompt(pipe, prep):
    with pytest.raises(LiteLVLMError, match="one expression per prompt"):
        pipe.with_sentences(prep, ["a", "b"])


def test_the_family_is_found_by_name_and_by_folder(pipe):
    from litelvlm.registry.families import family_of
    from litelvlm.unipixel.checkpoint import unipixel_folder

    assert family_of("unipixel-tiny-random:0") == "unipixel"
    assert family_of(str(unipixel_folder("unipixel-tiny-random:0"))) == "unipixel"
    assert pipe.describe()["family"] == "unipixel"
