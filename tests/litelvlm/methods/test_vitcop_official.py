"""ViTCoP (:mod:`litelvlm.methods.vitcop`) against the transcription of its official LLaVA-1.5 code in
``tests/official_vitcop.py``: chaser682/ViTCoP @ 627f63214ef9c67158beb7744d7dff087d43e6df, ``LLaVA/llava/``
``model/multimodal_encoder/utils.py`` L27-170 (VIC), ``model/multimodal_encoder/clip_encoder.py`` L170-244,
``model/vitcop_llava_arch.py`` L138-141 and L383-512, ``model/language_model/vitcop_modeling_llama.py``
L1163-1413, and ``eval/llava/vitcop_llava_1_5.sh`` L11-18. On random weights of the real architectures: a CLIP
tower of ViT-L/336's depth and grid (reduced width), an odd grid, and the tiny GLaMM on a COCO image and an
odd-sized one, at every budget (slow) and the edges and the paper's budgets (default)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from litelvlm.errors import LiteLVLMError
from litelvlm.methods import vitcop
from tests.litelvlm.methods.test_vispruner_visionzip_official import official_clip_attention
from tests.litelvlm.methods.test_vscan_official import Tower, tower
from tests.official_vitcop import (
    official_counts,
    official_llama,
    official_spatial_similarity,
    official_token_filter,
)

# ----------------------------------------------------------------------------------------------
# Counts and the budget mapping
# ----------------------------------------------------------------------------------------------

def test_the_papers_settings_are_the_official_ones():
    """At K = 64, 128, 192 of 576 on a 32-layer LLM the knobs are the script's (p as K / N: the script's
    4-digit ratios give the same counts) and the layers see 172/77/15, 230/165/33, 288/253/51 tokens,
    on average K."""
    for budget, (p, v, c), expected in ((64, (0.1111, 0.3, 0.12), (172, 77, 15)),
                                        (128, (0.2222, 0.4, 0.15), (230, 165, 33)),
                                        (192, (0.3333, 0.5, 0.18), (288, 253, 51))):
        st = vitcop.settings(budget, 576, 32)
        assert (st.vision_ratio, st.cluster_percentage, st.shallow, st.deep) == (v, c, 2, 22)
        assert vitcop.counts(st, 576, 32) == expected
        assert (int(v * 576), *official_counts(int(v * 576), p, v, 2, 22)) == expected
        (_, n0), (s, n1), (d, n2) = vitcop.VITCOP.schedule(budget, 576, 32)
        assert (n0, n1, n2, s, d) == (*expected, 2, 22)
        assert abs((s * n0 + (d - s) * n1 + (32 - d) * n2) / 32 - budget) < 0.5


def test_every_budget_counts_are_the_official_formula_or_its_documented_floor():
    """For every K < N (576 patches; 32 and 4 layers) the counts are L1295-1296's with the mapped knobs
    where the official R is 1..V, else R clamped (deviation 1); the average stays near K below the largest
    reachable one."""
    for layers in (32, 4):
        for budget in range(1, 576):
            st = vitcop.settings(budget, 576, layers)
            v = int(st.vision_ratio * 576)
            r, d = official_counts(v, st.ratio, st.vision_ratio, st.shallow, st.deep, layers)
            ours = vitcop.counts(st, 576, layers)
            if 1 <= r <= v:
                assert ours == (v, r, d), (layers, budget)
            else:
                assert ours[1] == min(max(r, 1), v) and r < 1, (layers, budget)
            if layers == 32 and 8 <= budget <= 400:
                assert abs(st.shallow * v + (st.deep - st.shallow) * ours[1]
                           + (32 - st.deep) * ours[2] - 32 * budget) <= 32 * 2.5, budget


# ----------------------------------------------------------------------------------------------
# The vision filter, alone
# ----------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def clip_tower():
    """A random CLIP tower of ViT-L/336's depth and grid (24 blocks, 24x24), reduced width (VScan's)."""
    return tower(torch.float32)


def _official_filter(t: Tower, v, c, grid=(24, 24)):
    blocks = t.model.vision_model.encoder.layers
    b = len(blocks) - 2
    with torch.no_grad():
        attn = official_clip_attention(blocks[b].self_attn, blocks[b].layer_norm1(t.hidden_states[b]))[0]
        k = blocks[b].self_attn.k_proj(blocks[b].layer_norm1(t.hidden_states[b]))  # the L194 hook
    _, labels, mask = official_spatial_similarity(attn, t.hidden_states[-2], k, v, c, grid)
    return torch.arange(mask.shape[1])[~mask[0]], labels[0]


@pytest.mark.parametrize("visual", [1, 2, 64, 172, 230, 288, 500, 576])
def test_vision_filter_is_the_official_one(clip_tower, visual):
    """ViT-L/336's 24 blocks on its 24x24 grid (width 32): the kept patches and their VIC labels."""
    v = visual / 576
    kept, labels = vitcop.vision_filter(clip_tower.inputs(), int(v * 576), 0.12)
    ref_kept, ref_labels = _official_filter(clip_tower, v, 0.12)
    assert kept.tolist() == ref_kept.tolist() and labels.tolist() == ref_labels.tolist()


def test_vision_filter_in_float16():
    """The tower, attention, keys and VIC in float16, the official's precision."""
    t = tower(torch.float16)
    for visual in (64, 230):
        kept, labels = vitcop.vision_filter(t.inputs(), visual, 0.15)
        ref_kept, ref_labels = _official_filter(t, visual / 576, 0.15)
        assert kept.tolist() == ref_kept.tolist() and labels.tolist() == ref_labels.tolist()


@pytest.mark.slow
def test_vision_filter_every_count(clip_tower):
    for visual in range(1, 577):
        v = visual / 576
        kept, labels = vitcop.vision_filter(clip_tower.inputs(), int(v * 576), 0.15)
        ref_kept, ref_labels = _official_filter(clip_tower, v, 0.15)
        assert kept.tolist() == ref_kept.tolist() and labels.tolist() == ref_labels.tolist(), visual


def test_vision_filter_on_an_odd_grid():
    """A 15x15 grid (this project's adaptation: positions over the family's grid; the official asserts
    24x24)."""
    t = Tower(torch.float32, layers=6, width=32, side=15)
    for visual in (1, 50, 113, 225):
        kept, labels = vitcop.vision_filter(t.inputs(), visual, 0.18)
        ref_kept, ref_labels = _official_filter(t, visual / 225, 0.18, grid=(15, 15))
        assert kept.tolist() == ref_kept.tolist() and labels.tolist() == ref_labels.tolist()


# ----------------------------------------------------------------------------------------------
# The tiny GLaMM end to end
# ----------------------------------------------------------------------------------------------

def official_glamm(pipe, prep, budget):
    """The official ViTCoP on the GLaMM pipeline's CLIP trace and LLM with the mapped knobs: the vision
    filter, the projector on the kept features (``encode_images`` L138-141), the prompt, the LLM loop."""
    n, layers = 576, len(pipe.language_model.layers)
    st = vitcop.settings(budget, n, layers)
    vision = prep.vision
    blocks = pipe.clip.model.vision_model.encoder.layers
    b = len(blocks) - 2
    with torch.no_grad():
        attn = official_clip_attention(blocks[b].self_attn, blocks[b].layer_norm1(vision.hidden_states[b]))[0]
        k = blocks[b].self_attn.k_proj(blocks[b].layer_norm1(vision.hidden_states[b]))
        feats, labels, mask = official_spatial_similarity(attn, vision.hidden_states[-2], k, st.vision_ratio,
                                                          st.cluster_percentage)
        tokens = pipe.projector().project(feats[0].to(pipe.dtype))
        layout = pipe.layout(prep, len(tokens))
        v = len(tokens)
        r, _ = official_counts(v, st.ratio, st.vision_ratio, st.shallow, st.deep, layers)
        final, rows = official_llama(pipe.language_model, pipe.sequence_embeds(prep, tokens), labels, v,
                                     [layout.image_start], st.ratio, st.vision_ratio, st.shallow, st.deep,
                                     layers, None if 1 <= r <= v else vitcop.counts(st, n, layers)[1])
    stage1 = torch.arange(n)[~mask[0]]
    return stage1, labels[0], stage1[rows["shallow"]], stage1[rows["deep"]], final


def _compare_glamm(pipe, prep, budget, tol=1e-5):
    out = pipe.ground(prep, "vitcop", budget)
    if budget == 576:
        assert out.kept_indices.tolist() == list(range(576)) and out.selection.llm_output is None
        return
    stage1, labels, shallow, deep, final = official_glamm(pipe, prep, budget)
    parts = out.selection.parts
    assert parts["stage1_kept"].tolist() == stage1.tolist(), budget
    assert parts["clusters"].tolist() == labels.tolist(), budget
    assert parts["shallow_kept"].tolist() == shallow.tolist(), budget
    assert out.kept_indices.tolist() == deep.tolist(), budget
    assert out.seq_len == final.shape[1], budget
    torch.testing.assert_close(out.selection.llm_output[0], final, rtol=tol, atol=tol)
    torch.testing.assert_close(out.seg_hidden, final[0, out.seg_positions], rtol=tol, atol=tol)


@pytest.fixture(scope="module")
def odd_prep(tiny_glamm):
    """An odd-sized (203 x 161) random image on the tiny GLaMM."""
    image = Image.fromarray(np.random.default_rng(1).integers(0, 255, (161, 203, 3), dtype=np.uint8))
    return tiny_glamm.prepare(image, ["the dog on the left", "a cat"])


@pytest.mark.parametrize("budget", [1, 64, 128, 192, 575, 576])
def test_glamm_pipeline_equals_the_official_code(tiny_glamm, tiny_glamm_prep, budget):
    """The tiny GLaMM (24x24 grid, 2 CLIP blocks, 4 LLM layers: s = 1, d = 3) on a COCO image, float32: the
    same patches enter the LLM with the same clusters, the same tokens stay at both layers, the final
    hidden states within 1e-5."""
    _compare_glamm(tiny_glamm, tiny_glamm_prep, budget)


@pytest.mark.parametrize("budget", [2, 300])
def test_glamm_pipeline_odd_image(tiny_glamm, odd_prep, budget):
    _compare_glamm(tiny_glamm, odd_prep, budget)


@pytest.mark.slow
def test_glamm_pipeline_every_budget(tiny_glamm, tiny_glamm_prep, odd_prep):
    for budget in range(1, 577):
        _compare_glamm(tiny_glamm, tiny_glamm_prep if budget % 2 else odd_prep, budget)


def test_where_the_official_count_fails_it_crashes(tiny_glamm, tiny_glamm_prep):
    """K = 1 on the 4-layer LLM: the official R is 0 and its ``topk(k=R-1)`` fails; the port keeps 1."""
    st = vitcop.settings(1, 576, 4)
    v = int(st.vision_ratio * 576)
    assert official_counts(v, st.ratio, st.vision_ratio, st.shallow, st.deep, 4)[0] == 0
    with pytest.raises(RuntimeError):
        official_token_filter(torch.zeros(v, dtype=torch.long), torch.rand(v), 0, 0)
    assert vitcop.counts(st, 576, 4)[1] == 1


def test_schedule_is_what_the_pipeline_keeps(tiny_glamm, tiny_glamm_prep):
    for budget in (1, 64, 500):
        out = tiny_glamm.ground(tiny_glamm_prep, "vitcop", budget)
        counts = out.selection.parts["stage_counts"].tolist()
        stages = vitcop.VITCOP.schedule(budget, 576, 4)
        assert [c for _, c in stages] == [c for i, c in enumerate(counts) if i == 0 or c != counts[i - 1]]
        assert out.prune_layer == stages[1][0] if counts[1] != counts[0] else True


def test_renumber_numbers_every_stage_afresh(tiny_glamm, tiny_glamm_prep):
    """``positions="renumber"``: the same tokens, positions 0..S'-1 at each stage (so other states)."""
    a = tiny_glamm.ground(tiny_glamm_prep, "vitcop", 64)
    b = tiny_glamm.ground(tiny_glamm_prep, "vitcop", 64, positions="renumber")
    assert a.kept_indices.tolist() == b.kept_indices.tolist()
    assert not torch.allclose(a.seg_hidden, b.seg_hidden)
    with pytest.raises(LiteLVLMError, match="no original position"):
        tiny_glamm.ground(tiny_glamm_prep, "vitcop", 64, positions="keep")


def test_the_families_without_clips_own_grid_refuse_it_by_name():
    """Only LLaVA code is published: UniPixel and Sa2VA (CLIP's scores mapped onto Qwen/InternVL tokens, no
    [CLS] attention or keys on their grid) and VideoGLaMM (no single image's trace) refuse it with the
    reason."""
    from litelvlm.lazy import resolve
    from litelvlm.registry.families import REGISTERED

    for card in map(resolve, REGISTERED):
        cls = resolve(card.pipeline)
        why = cls.__new__(cls).method_error("vitcop")  # asked of the class, before any weights load
        assert (why is None) == (card.name == "glamm"), card.name
        assert why is None or why.startswith("vitcop reads "), why


def test_layers_and_ratios_are_checked():
    with pytest.raises(LiteLVLMError):
        vitcop.settings(64, 576, 32, shallow_layer=22, deep_layer=2)
    with pytest.raises(LiteLVLMError):
        vitcop.settings(64, 576, 32, vision_ratio=0.001)
    assert vitcop.default_layers(4) == (1, 3) and vitcop.default_layers(40) == (2, 28)
