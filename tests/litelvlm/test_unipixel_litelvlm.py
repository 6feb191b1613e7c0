"""LiteLVLM on UniPixel's merged tokens (this project's adaptation; no official code exists for it).

What is official and transcribed: the scores and the selection rule of LiteLVLM
(``tests/official_litelvlm.py``, sejong-rcv/LiteLVLM @ 5896153 ``clip_encoder.py`` L78-113, L158-168). What is
this project's: CLIP sees the image padded to a square, its per-patch scores are put on Qwen2.5-VL's merged
grid by the area rule (each token the overlap-weighted mean of the patch scores under its box), and the
official rule then ranks the N merged tokens. The tests check each piece against an independent computation:
the map against boxes computed by hand, the selection at every budget 1..N against the official statements on
the mapped scores, and the LLM input and the kept tokens' 3-D positions against the merged tokens themselves,
on a COCO image and on odd sizes.
"""

from __future__ import annotations

import pytest
import torch
from PIL import Image

from litelvlm.errors import LiteLVLMError
from tests.fixtures.images import noise_image as _noise
from tests.official_litelvlm import official_retain, official_scores  # noqa: E402

MODEL = "unipixel-tiny-random:0"


@pytest.fixture(scope="module")
def pipe(tiny_unipixel_pipe):
    return tiny_unipixel_pipe


@pytest.fixture(scope="module")
def towers(official_clip_towers):
    return official_clip_towers


def _hand_map(image_size, grid_thw, clip_side_cells: int) -> torch.Tensor:
    """(N, P) the area rule from boxes computed here: CLIP's cells over the image padded to a centred square,
    the merged tokens over the whole image resized per axis to the processor's grid."""
    H, W = image_size
    _, gh, gw = (int(v) for v in grid_thw)
    th, tw = gh // 2, gw // 2                      # merged tokens per column / row
    side = max(H, W)
    top, left = (side - H) // 2, (side - W) // 2   # LLaVA's expand2square offsets
    cell = side / clip_side_cells
    out = torch.zeros(th * tw, clip_side_cells ** 2, dtype=torch.float64)
    for i in range(th):
        y0, y1 = i * H / th, (i + 1) * H / th
        for j in range(tw):
            x0, x1 = j * W / tw, (j + 1) * W / tw
            for r in range(clip_side_cells):
                oy = max(0.0, min(y1, (r + 1) * cell - top) - max(y0, r * cell - top))
                for c in range(clip_side_cells):
                    ox = max(0.0, min(x1, (c + 1) * cell - left) - max(x0, c * cell - left))
                    out[i * tw + j, r * clip_side_cells + c] = oy * ox
    return out / out.sum(1, keepdim=True)


@pytest.mark.parametrize("size", [(97, 131), (301, 45), (64, 64)])
def test_the_map_is_the_area_rule_over_the_padded_square(pipe, size):
    prep = pipe.prepare(_noise(*size), ["the cup"])
    mapped = prep.selector_inputs()
    rows, cols = pipe.clip.grid
    assert rows == cols
    hand = _hand_map(size, prep.grid_thw[0], rows)
    assert mapped.weights.shape == (pipe.num_visual(prep), rows * cols)
    torch.testing.assert_close(mapped.weights, hand, rtol=0, atol=1e-12)


def _official_on_merged(pipe, towers, prep, question: str):
    """The official scores of the padded image and the question, put on the merged grid by the pipeline's
    map."""
    vision, text, tok = towers
    with torch.no_grad():
        pixels = pipe.clip.preprocess([prep.image.convert("RGB")], pad_to_square=True)
        attn, sims = official_scores(vision, text, tok, pixels, [question])
    w = prep.selector_inputs().weights
    return attn.double() @ w.T, sims.double() @ w.T


def test_every_budget_equals_the_official_rule_on_the_mapped_scores(pipe, towers, coco128):
    from litelvlm.methods.select import select
    from litelvlm.unipixel.protocol import question

    image = Image.open(sorted((coco128 / "images").glob("*.jpg"))[0])
    sentence = "the man on the left"
    prep = pipe.prepare(image, [sentence])
    mapped = prep.selector_inputs()
    # CLIP embeds the protocol's question, as LiteLVLM does GLaMM's
    assert mapped.text.texts == [question(sentence)]
    attn, sims = _official_on_merged(pipe, towers, prep, question(sentence))
    n = pipe.num_visual(prep)
    assert n == mapped.num_patches and n > 100
    for budget in range(1, n + 1):
        ours = select("litelvlm", mapped, budget).indices
        assert ours.tolist() == official_retain(attn, sims, budget).tolist(), f"K={budget}"


@pytest.mark.parametrize("size", [(97, 131), (301, 45)])
def test_odd_images_at_the_edge_budgets(pipe, towers, size):
    from litelvlm.unipixel.protocol import question

    prep = pipe.prepare(_noise(*size, seed=3), ["a red cup."])
    attn, sims = _official_on_merged(pipe, towers, prep, question("a red cup."))
    n = pipe.num_visual(prep)
    for budget in sorted({1, 2, 3, n // 2, n - 1, n}):
        out = pipe.ground(prep, "litelvlm", budget)
        assert out.kept_indices.tolist() == official_retain(attn, sims, budget).tolist(), f"{size} K={budget}"
        assert out.seq_len == pipe.layout(prep, n).seq_len - n + budget


def test_the_llm_gets_the_kept_merged_tokens_at_their_3d_positions(pipe):
    from litelvlm.methods.select import select

    prep = pipe.prepare(_noise(97, 131), ["the dog on the left."])
    n = pipe.num_visual(prep)
    sel = select("litelvlm", prep.selector_inputs(), 9)
    assert torch.equal(pipe.clip_selection_tokens(prep, sel), prep.visual[sel.indices])
    assert torch.equal(pipe.clip_selection_rows(prep, sel), sel.indices)
    keep, renum = pipe.ground(prep, "litelvlm", 9), pipe.ground(prep, "litelvlm", 9, positions="renumber")
    # the family's rule, as for FastV
    assert keep.position_rule == "keep" and renum.position_rule == "renumber"
    assert torch.equal(keep.kept_indices, sel.indices)
    layout = pipe.layout(prep, n)
    pos = pipe.kept_positions(prep, keep.kept_indices)
    s = layout.image_start
    assert torch.equal(pos[..., s:s + 9],
                       layout.position_ids[..., s + sel.indices.to(layout.position_ids.device)])
    assert not torch.equal(keep.seg_hidden, renum.seg_hidden)


def test_the_score_only_methods_run_and_the_others_are_refused(pipe, unoffered_methods):
    from litelvlm.methods import mapped_methods

    prep = pipe.prepare(_noise(64, 96), ["the cup"])
    n = pipe.num_visual(prep)
    assert mapped_methods() == ["clip_topsim", "litelvlm", "litelvlm-context", "litelvlm-ctx", "random"]
    for method in mapped_methods():
        for budget in (1, n // 2, n):
            out = pipe.ground(prep, method, budget)
            assert len(out.kept_indices) == budget and out.kept_indices.unique().numel() == budget
            assert int(out.kept_indices.min()) >= 0 and int(out.kept_indices.max()) < n
    g = torch.Generator().manual_seed(prep.seed)
    assert pipe.ground(prep, "random", 5).kept_indices.tolist() == sorted(
        torch.randperm(n, generator=g)[:5].tolist())
    for method in ("clip-grid-only",):  # a CLIP-grid method without a Qwen2.5-VL variant (test-only)
        assert "per-token scores" in pipe.method_error(method)
        with pytest.raises(LiteLVLMError, match="per-token scores"):
            pipe.ground(prep, method, 8)


def test_clip_text_expression_and_the_default_clip():
    from litelvlm.registry.families import load_pipeline
    from litelvlm.unipixel.pipeline import default_clip

    assert default_clip("unipixel-tiny-random:3") == "tiny336-random:3"
    assert default_clip("unipixel-7b-random") == "vit-l-14-336-random:0"
    assert default_clip("some/unipixel-folder") == "openai/clip-vit-large-patch14-336"
    p = load_pipeline(MODEL, clip_text="expression")
    prep = p.prepare(_noise(64, 64), ["The cup."])
    assert prep.selector_inputs().text.texts == ["The cup."]
    assert p.describe()["clip"]["text"] == "expression"
    with pytest.raises(LiteLVLMError, match="clip_text"):
        load_pipeline(MODEL, clip_text="caption")


def test_methods_that_never_read_clip_never_load_it(pipe):
    from litelvlm.registry.families import load_pipeline

    p = load_pipeline(MODEL)
    prep = p.prepare(_noise(64, 64), ["the cup"])
    p.ground(prep, "fastv", 8)
    assert isinstance(p._clip, str)  # still the model string: not loaded


def _vscan_global_score(visual, pixel_values, grid_thw):
    """VScan's Qwen score, transcribed (Tencent/SelfEvolvingAgent @a82450e
    ``VScan/qwen/model/qwen2_5_vl_custom.py``): the last block's attention weights
    (``Qwen2_5_VLVisionSdpaAttention_X.forward`` L474-509, rotary once, the window mask of L501-505), summed
    over heads, averaged over queries and over each merge unit, and un-permuted (L342-392). The block's input
    is taken here at the block (not its attention), and the window order from transformers'
    ``get_vision_window_index``."""
    from transformers.vision_utils import get_vision_window_index

    from tests.official_vscan_qwen import _sdpa_x_weights  # custom.py L474-509, transcribed once

    blk = visual.blocks[len(visual.blocks) - 1]
    got = {}
    handle = blk.register_forward_pre_hook(lambda m, a, kw: got.update(h=a[0], **kw), with_kwargs=True)
    try:
        visual(pixel_values, grid_thw=grid_thw)
    finally:
        handle.remove()
    attn_weights = _sdpa_x_weights(blk.attn, blk.norm1(got["h"]), got["cu_seqlens"],
                                   got["position_embeddings"])
    attn_weights_global = torch.sum(attn_weights, dim=0)
    attn_weights_global = torch.mean(attn_weights_global, dim=0)
    attn_weights_global = attn_weights_global.view(-1, visual.spatial_merge_size ** 2)
    attn_weights_global = torch.mean(attn_weights_global, dim=1)
    window_index, _ = get_vision_window_index(grid_thw, spatial_merge_size=visual.spatial_merge_size,
                                              window_size=visual.window_size, patch_size=visual.patch_size)
    reverse_indices = torch.argsort(window_index)
    return attn_weights_global[reverse_indices]


@pytest.mark.parametrize("size", [(97, 131), (301, 45), (300, 400)])
def test_the_vit_context_is_vscans_qwen_score(size):
    """``context="vit"``: LiteLVLM's context part is VScan's global score of Qwen's own tower (this project's
    adaptation); the score equals the transcription, and the selection ranks the tokens by it."""
    from litelvlm.methods.select import select
    from litelvlm.registry.families import load_pipeline

    p = load_pipeline(MODEL, clip_context="vit")
    prep = p.prepare(_noise(*size, seed=5), ["the cup"])
    video = p._video(prep.image)
    with torch.no_grad():
        ref = _vscan_global_score(p.qwen.model.visual, video["pixel_values_videos"], video["video_grid_thw"])
    mapped = prep.selector_inputs()
    torch.testing.assert_close(mapped.context(), ref.double(), rtol=0, atol=0)
    n = p.num_visual(prep)
    assert ref.shape == (n,)
    order = torch.sort(ref.double(), descending=True, stable=True).indices
    assert select("litelvlm-context", mapped, n // 2).indices.tolist() == order[: n // 2].tolist()
    assert p.describe()["clip"]["context"] == "vit"
    with pytest.raises(LiteLVLMError, match="context"):
        load_pipeline(MODEL, clip_context="cls")
