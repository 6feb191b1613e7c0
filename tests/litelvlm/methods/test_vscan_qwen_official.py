"""VScan's Qwen2.5-VL variant (``litelvlm.methods.vscan_qwen``) against its official code, transcribed in
``tests/official_vscan_qwen.py`` (Tencent/SelfEvolvingAgent @a82450e,
``VScan/qwen/model/qwen2_5_vl_custom.py`` L143-188, L338-392, L474-509, L575-670, L691-785 and
``VScan/qwen/model/qwen2_5_vl_utils.py`` L97-193, with the settings of ``VScan/qwen/eval/test_refcoco.py``
L147-153), on UniPixel's tiny random Qwen2.5-VL (``unipixel-tiny-random:0``): odd image sizes, budgets over
the whole range, float32 and bfloat16. Checked: the local and global picks in their order, the kept tokens,
the merged features (1e-5 in float32, identical in bfloat16), the tokens the middle layer keeps, the final
hidden states, and the schedule the FLOPs count reads.
"""

from __future__ import annotations

import functools

import pytest
import torch

from litelvlm.errors import LiteLVLMError
from litelvlm.methods import vscan_qwen as vq
from tests import official_vscan_qwen as off  # noqa: E402
from tests.fixtures.images import noise_image as _noise
from tests.fixtures.once import computed_once

MODEL = "unipixel-tiny-random:0"
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16}


@functools.cache
def _load(dtype: str):
    from litelvlm.lvlm.numerics import Numerics
    from litelvlm.registry.families import load_pipeline

    # SDPA, as the official code's flash attention: its transcription calls the layers without a mask (causal
    # under SDPA, none under eager attention, which the pipeline now applies under the official numerics)
    return load_pipeline(MODEL, dtype=DTYPES[dtype], numerics=Numerics(attn="sdpa"))


@pytest.fixture(scope="module", params=list(DTYPES))
def pipe(request):
    return _load(request.param)


@pytest.fixture(scope="module")
def fp32():
    return _load("float32")


class Official:
    """The official prefill of one prepared prompt (its vision-side scores computed once)."""

    def __init__(self, pipe, prep):
        self.pipe, self.prep = pipe, prep
        visual = pipe.qwen.model.visual
        video = pipe._video(prep.image)
        self.grid = video["video_grid_thw"]
        pixel_values = video["pixel_values_videos"].type(visual.dtype)  # L126
        self.embeds, self.local, self.global_ = off.official_vision(visual, pixel_values, self.grid)
        self.n = pipe.num_visual(prep)

    @torch.no_grad()
    def run(self, visual: int, layer: int, ratio: float = vq.STAGE_RATIO):
        """V = ``visual`` tokens (through an image_token_ratio with int(ratio * N) = V),
        ``layer_list=[layer]``."""
        pipe, prep, n = self.pipe, self.prep, self.n
        visual_token_ratio = 1 if visual == n else (visual + 0.5) / n
        input_ids = prep.input_ids[None]
        mask = (prep.mm_token_type_ids > 0)[None]
        position_ids = pipe.layout(prep, n).position_ids.cpu()  # transformers' get_rope_index (L113)
        embeds, keep, local, global_, ids, pos = off.official_select(
            self.embeds.clone(), self.local, self.global_.clone(), input_ids, mask, position_ids, self.grid,
            visual_token_ratio)
        lm = pipe.language_model
        image_start_index = torch.nonzero(mask)[0, 1]  # L179
        inputs_embeds = lm.embed_tokens(ids)  # L184-188
        image_mask = (ids == prep.input_ids[int(image_start_index)]).unsqueeze(-1).expand_as(inputs_embeds)
        inputs_embeds = inputs_embeds.masked_scatter(image_mask, embeds.to(inputs_embeds.dtype))
        final, kept = off.official_llm(lm, image_start_index, inputs_embeds, pos,
                                       int(image_mask[..., 0].sum()), [layer], [ratio])
        return dict(embeds=embeds, keep=keep, local=local, global_=global_, final=final, rows=kept[0])


def _checks(pipe, prep, ref: Official, budgets, exact_features: bool) -> None:
    """:func:`_check` at each budget, on one context of ``prep`` (read only); the tower's scores the
    selection reads (``vision_scores``, a function of the context) are computed once."""
    from litelvlm.llm.context import LLMContext

    ctx = LLMContext(pipe, prep, pipe.visual_tokens(prep))
    with computed_once(vq, "vision_scores"):
        for budget in budgets:
            _check(pipe, ctx, ref, budget, exact_features)


def _check(pipe, ctx, ref: Official, budget: int, exact_features: bool) -> None:
    n, num_layers = ref.n, len(pipe.language_model.layers)
    layer = vq.default_layer(num_layers)
    visual, keep = vq.stage_counts(budget, n, num_layers)
    sel = pipe.spec("vscan").select(ctx, budget)
    if budget == n:
        assert sel.indices.tolist() == list(range(n)) and sel.llm_output is None
        return
    got = ref.run(visual, layer)
    stage1 = torch.arange(n) if got["keep"] is None else got["keep"].long()
    assert torch.equal(sel.parts["stage1_kept"], stage1), budget
    if got["keep"] is not None:
        assert sel.parts["local"].tolist() == got["local"].tolist()  # the official pick order
        assert sel.parts["global"].tolist() == got["global_"].tolist()
        merged, kept, _ = vq.vision_stage(ctx, visual)
        assert torch.equal(kept.cpu(), stage1)
        tol = 0 if exact_features else 1e-5
        torch.testing.assert_close(merged, got["embeds"], rtol=0, atol=tol)
    assert sel.parts["stage_visual"].tolist() == [len(stage1), keep]
    assert sel.indices.tolist() == stage1[got["rows"].sort().values].tolist(), budget
    final = sel.llm_output[0]
    assert final.shape == got["final"].shape
    atol = 1e-5 if final.dtype == torch.float32 else 5e-2
    torch.testing.assert_close(final.float(), got["final"].float(), rtol=0, atol=atol)
    sched = pipe.spec("vscan").schedule(budget, n, num_layers)
    assert sched == (((0, len(stage1)), (layer, keep)) if keep < len(stage1) else ((0, len(stage1)),))
    assert sel.prune_layer == (layer if keep < len(stage1) else 0)


def _budgets(n: int, step: int) -> list[int]:
    return sorted({1, 2, 3, n - 1, n, *range(4, n, step)})


def test_budgets_across_the_range_match_the_official_code(pipe):
    """A small odd-sized image (97x131, N = 140 merged tokens on 5x7 windows), budgets across 1..N, each
    dtype."""
    prep = pipe.prepare(_noise(97, 131), ["the cup"])
    ref = Official(pipe, prep)
    _checks(pipe, prep, ref, _budgets(ref.n, 9), exact_features=pipe.dtype != torch.float32)


@pytest.mark.slow
def test_every_budget_matches_the_official_code(pipe):
    prep = pipe.prepare(_noise(97, 131, seed=2), ["the cup"])
    ref = Official(pipe, prep)
    _checks(pipe, prep, ref, range(1, ref.n + 1), exact_features=pipe.dtype != torch.float32)


@pytest.mark.parametrize("size", [(45, 301), (300, 400), (131, 97)])
def test_odd_sizes_match_the_official_code(fp32, size):
    """Other odd sizes: 45x301 is a 5x30 merged grid (a partial row of windows joins the last one)."""
    prep = fp32.prepare(_noise(*size, seed=3), ["the cup"])
    ref = Official(fp32, prep)
    _checks(fp32, prep, ref, (1, 5, ref.n // 2, ref.n - 7), exact_features=False)


def test_the_official_ratios(fp32):
    """``ratios=(image_token_ratio, image_token_ratio_list[0])``: RefCOCO's (0.6, 0.67) as the official code
    runs them."""
    from litelvlm.llm.context import LLMContext

    prep = fp32.prepare(_noise(97, 131, seed=4), ["the cup"])
    ref = Official(fp32, prep)
    sel = fp32.spec("vscan").select(LLMContext(fp32, prep, fp32.visual_tokens(prep)), ref.n,
                                    ratios=(0.6, 0.67))
    visual = int(0.6 * ref.n)
    got = ref.run(visual, 1, 0.67)
    assert torch.equal(sel.parts["stage1_kept"], got["keep"].long())
    assert sel.indices.tolist() == got["keep"].long()[got["rows"].sort().values].tolist()
    assert len(sel) == int(0.67 * visual)
    torch.testing.assert_close(sel.llm_output[0], got["final"], rtol=0, atol=1e-5)
    assert fp32.spec("vscan").schedule(ref.n, ref.n, 2, ratios=(0.6, 0.67)) == ((0, visual),
                                                                                (1, int(0.67 * visual)))


def _grid(h: int, w: int) -> torch.Tensor:
    return torch.tensor([[1, 2 * h, 2 * w]])


@pytest.mark.parametrize(("h", "w"), [(4, 4), (5, 7), (8, 13), (11, 6), (4, 30), (9, 9)])
def test_window_selection_is_the_official_walk(h, w):
    """Every count 0..N on random scores, and on scores with many ties (bfloat16-coarse), in the official
    order."""
    g = torch.Generator().manual_seed(h * 100 + w)
    for scores in (torch.rand(h * w, generator=g),
                   torch.randint(0, 5, (h * w,), generator=g).to(torch.bfloat16)):
        for count in range(0, h * w + 1):
            try:
                want = off.window_selection(scores, count, _grid(h, w)).long().tolist()
            except AssertionError:  # the official assert: the windows cannot place ``count`` tokens
                with pytest.raises(LiteLVLMError, match="official assert"):
                    vq.window_selection(scores, count, h, w)
                continue
            assert vq.window_selection(scores, count, h, w).tolist() == want, (h, w, count)


def test_a_grid_without_a_whole_window():
    """A side under 4 merged tokens: the official walk places nothing (its limit divides by 0 windows) and
    fails; the default refuses, ``fit_windows=True`` makes that side one window."""
    scores = torch.rand(3 * 10, generator=torch.Generator().manual_seed(0))
    with pytest.raises((AssertionError, RuntimeError, IndexError)):
        off.window_selection(scores, 4, _grid(3, 10))
    with pytest.raises(LiteLVLMError, match="fit_windows"):
        vq.window_selection(scores, 4, 3, 10)
    picks = vq.window_selection(scores, 4, 3, 10, fit_windows=True)  # 1x2 windows of 3x4 and 3x6: 2 each
    cols = (picks % 10).tolist()
    assert sum(c < 4 for c in cols) == 2 and len(set(picks.tolist())) == 4
    assert vq.window_selection(scores, 0, 3, 10).numel() == 0


@pytest.mark.parametrize("dtype", list(DTYPES.values()))
def test_token_merging_is_the_official_merge(dtype):
    g = torch.Generator().manual_seed(1)
    feats = torch.randn(40, 16, generator=g).to(dtype)
    for keep in (torch.tensor([0]), torch.tensor([3, 9, 17, 39]), torch.arange(40),
                 torch.randperm(40, generator=g)[:13]):
        keep = keep.sort().values
        assert torch.equal(vq.token_merging(feats, keep), off.token_merging(feats, keep, scaling=1))


def test_stage_counts_and_schedule():
    """K = the average over the layers: V the largest with that average <= K, then the official int(0.67 V);
    K = N prunes nothing; on 28 layers the middle layer is 14."""
    for n, layers in ((140, 2), (576, 28), (1000, 36)):
        layer = vq.default_layer(layers)
        for budget in range(1, n):
            v, keep = vq.stage_counts(budget, n, layers)
            assert keep == int(0.67 * v) and 1 <= v <= n
            assert layer * v + (layers - layer) * keep <= layers * budget
            if v < n:
                assert layer * (v + 1) + (layers - layer) * int(0.67 * (v + 1)) > layers * budget
        assert vq.stage_counts(n, n, layers) == (n, n)
        assert vq.vscan_qwen_schedule(n, n, layers) == ((0, n),)
    assert vq.default_layer(28) == 14 and vq.default_layer(2) == 1 and vq.default_layer(36) == 18


def test_it_grounds_on_unipixel(fp32):
    """Through ``ground``: the kept tokens keep their M-RoPE ids (official), ``renumber`` on request; the
    sequence the mask head reads is the pruned one."""
    cls = type(fp32)
    assert cls.method_error(cls, "vscan") is None
    prep = fp32.prepare(_noise(97, 131, seed=6), ["the cup"])
    n = fp32.num_visual(prep)
    with torch.no_grad():
        out = fp32.ground(prep, "vscan", 32)
        ren = fp32.ground(prep, "vscan", 32, positions="renumber")
        full = fp32.ground(prep, "vscan", n)
    v, keep = vq.stage_counts(32, n, 2)
    text = len(prep.input_ids) - n
    assert out.position_rule == "keep" and ren.position_rule == "renumber"
    assert out.seq_len == ren.seq_len == text + keep and out.prune_layer == 1 and len(
        out.kept_indices) == keep
    assert torch.equal(out.kept_indices, ren.kept_indices)
    assert not torch.equal(out.seg_hidden, ren.seg_hidden)
    assert full.seq_len == len(prep.input_ids) and full.prune_layer == 0
    with pytest.raises(LiteLVLMError, match="layer"):
        fp32.ground(prep, "vscan", 32, layer=2)
    from analysis.efficiency.scope import family_method_error

    # efficiency charges its tower re-run as its selection
    assert family_method_error("unipixel", "vscan") is None
