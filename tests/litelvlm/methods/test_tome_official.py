"""ToMe in LLaVA's CLIP tower against a statement-by-statement transcription of the official code.

The transcription below follows ToMe's ``bipartite_soft_matching``, ``merge_wavg``,
``merge_source``, ``parse_r`` and the timm ``ToMeBlock``/``ToMeAttention`` forwards line by line
(batch dimension kept, as in the originals) and runs them on the SAME weights: the blocks of a
random transformers ``CLIPModel`` with LLaVA-1.5's vision shapes (CLIP ViT-L/14-336: 577 tokens =
CLS + 24x24 patches, width 1024, 16 heads, quick_gelu MLP; all 24 layers in the slow test; the fast
tests take 6 layers of width 256, the same 577 tokens and 16 heads, where the width is not what is
tested). timm's fused ``qkv`` Linear is the concatenation of CLIP's q/k/v projections
(:class:`FusedQKV`), its ``proj`` is ``out_proj``, ``norm1``/``norm2``/``mlp`` are the CLIP layer's.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable

import pytest
import torch
from torch import nn

from litelvlm.clip.traces import VisionTrace
from litelvlm.methods.select import select, visual_features
from litelvlm.methods.tome import ToMeState, merge_schedule, tome_block
from litelvlm.pruning import SelectorInputs

TOME_COMMIT = "af95e4b1befa172dadccd8c81e223b10090f9579"
GRID, WIDTH, HEADS = 24, 1024, 16
#: the width of the fast tests' 6-layer tower (the token count, the heads and the merges as at ViT-L)
FAST_WIDTH = 256


# ----------------------------------------------------------------------------------------------
# Official code, transcribed
# ----------------------------------------------------------------------------------------------

def do_nothing(x, mode=None):
    """facebookresearch/ToMe @ af95e4b1befa172dadccd8c81e223b10090f9579, tome/merge.py L14-15."""
    return x


def official_bipartite_soft_matching(metric: torch.Tensor, r: int, class_token: bool = False,
                                     distill_token: bool = False) -> tuple[Callable, Callable]:
    """facebookresearch/ToMe @ af95e4b1befa172dadccd8c81e223b10090f9579, tome/merge.py L18-97."""
    protected = 0
    if class_token:
        protected += 1
    if distill_token:
        protected += 1

    # We can only reduce by a maximum of 50% tokens
    t = metric.shape[1]
    r = min(r, (t - protected) // 2)

    if r <= 0:
        return do_nothing, do_nothing

    with torch.no_grad():
        metric = metric / metric.norm(dim=-1, keepdim=True)
        a, b = metric[..., ::2, :], metric[..., 1::2, :]
        scores = a @ b.transpose(-1, -2)

        if class_token:
            scores[..., 0, :] = -math.inf
        if distill_token:
            scores[..., :, 0] = -math.inf

        node_max, node_idx = scores.max(dim=-1)
        edge_idx = node_max.argsort(dim=-1, descending=True)[..., None]

        unm_idx = edge_idx[..., r:, :]  # Unmerged Tokens
        src_idx = edge_idx[..., :r, :]  # Merged Tokens
        dst_idx = node_idx[..., None].gather(dim=-2, index=src_idx)

        if class_token:
            # Sort to ensure the class token is at the start
            unm_idx = unm_idx.sort(dim=1)[0]

    def merge(x: torch.Tensor, mode="mean") -> torch.Tensor:
        src, dst = x[..., ::2, :], x[..., 1::2, :]
        n, t1, c = src.shape
        unm = src.gather(dim=-2, index=unm_idx.expand(n, t1 - r, c))
        src = src.gather(dim=-2, index=src_idx.expand(n, r, c))
        dst = dst.scatter_reduce(-2, dst_idx.expand(n, r, c), src, reduce=mode)

        if distill_token:
            return torch.cat([unm[:, :1], dst[:, :1], unm[:, 1:], dst[:, 1:]], dim=1)
        else:
            return torch.cat([unm, dst], dim=1)

    def unmerge(x: torch.Tensor) -> torch.Tensor:
        unm_len = unm_idx.shape[1]
        unm, dst = x[..., :unm_len, :], x[..., unm_len:, :]
        n, _, c = unm.shape

        src = dst.gather(dim=-2, index=dst_idx.expand(n, r, c))

        out = torch.zeros(n, metric.shape[1], c, device=x.device, dtype=x.dtype)

        out[..., 1::2, :] = dst
        out.scatter_(dim=-2, index=(2 * unm_idx).expand(n, unm_len, c), src=unm)
        out.scatter_(dim=-2, index=(2 * src_idx).expand(n, r, c), src=src)

        return out

    return merge, unmerge


def official_merge_wavg(merge: Callable, x: torch.Tensor, size: torch.Tensor = None
                        ) -> tuple[torch.Tensor, torch.Tensor]:
    """facebookresearch/ToMe @ af95e4b1befa172dadccd8c81e223b10090f9579, tome/merge.py L210-224."""
    if size is None:
        size = torch.ones_like(x[..., 0, None])

    x = merge(x * size, mode="sum")
    size = merge(size, mode="sum")

    x = x / size
    return x, size


def official_merge_source(merge: Callable, x: torch.Tensor, source: torch.Tensor = None) -> torch.Tensor:
    """facebookresearch/ToMe @ af95e4b1befa172dadccd8c81e223b10090f9579, tome/merge.py L227-239."""
    if source is None:
        n, t, _ = x.shape
        source = torch.eye(t, device=x.device)[None, ...].expand(n, t, t)

    source = merge(source, mode="amax")
    return source


def official_parse_r(num_layers: int, r: list[int] | tuple[int, float] | int) -> list[int]:
    """facebookresearch/ToMe @ af95e4b1befa172dadccd8c81e223b10090f9579, tome/utils.py L80-105."""
    inflect = 0
    if isinstance(r, list):
        if len(r) < num_layers:
            r = r + [0] * (num_layers - len(r))
        return list(r)
    elif isinstance(r, tuple):
        r, inflect = r

    min_val = int(r * (1.0 - inflect))
    max_val = 2 * r - min_val
    step = (max_val - min_val) / (num_layers - 1)

    return [int(min_val + step * i) for i in range(num_layers)]


class FusedQKV(nn.Module):
    """timm's ``qkv`` Linear over CLIP's separate projections: ``cat[q_proj(x), k_proj(x), v_proj(x)]``
    (the layout ``reshape(B, N, 3, heads, head_dim)`` expects)."""

    def __init__(self, clip_attn: nn.Module):
        super().__init__()
        self.a = clip_attn

    def forward(self, x):
        return torch.cat([self.a.q_proj(x), self.a.k_proj(x), self.a.v_proj(x)], dim=-1)


class OfficialToMeAttention(nn.Module):
    """ToMeAttention on a CLIP layer's weights (timm's ``Attention`` attributes: ``qkv``, ``num_heads``,
    ``scale``, ``attn_drop``, ``proj``, ``proj_drop``; dropouts are identities in eval)."""

    def __init__(self, clip_attn: nn.Module):
        super().__init__()
        self.qkv = FusedQKV(clip_attn)
        self.num_heads = clip_attn.num_heads
        self.scale = clip_attn.head_dim ** -0.5
        self.attn_drop = nn.Identity()
        self.proj = clip_attn.out_proj
        self.proj_drop = nn.Identity()

    def forward(self, x: torch.Tensor, size: torch.Tensor = None) -> tuple[torch.Tensor, torch.Tensor]:
        """facebookresearch/ToMe @ af95e4b1befa172dadccd8c81e223b10090f9579, tome/patch/timm.py L66-96."""
        # Note: this is copied from timm.models.vision_transformer.Attention with modifications.
        B, N, C = x.shape
        qkv = (
            self.qkv(x)
            .reshape(B, N, 3, self.num_heads, C // self.num_heads)
            .permute(2, 0, 3, 1, 4)
        )
        q, k, v = (
            qkv[0],
            qkv[1],
            qkv[2],
        )  # make torchscript happy (cannot use tensor as tuple)

        attn = (q @ k.transpose(-2, -1)) * self.scale

        # Apply proportional attention
        if size is not None:
            attn = attn + size.log()[:, None, None, :, 0]

        attn = attn.softmax(dim=-1)
        attn = self.attn_drop(attn)

        x = (attn @ v).transpose(1, 2).reshape(B, N, C)
        x = self.proj(x)
        x = self.proj_drop(x)

        # Return k as well here
        return x, k.mean(1)


class OfficialToMeBlock(nn.Module):
    """ToMeBlock on a CLIP layer (``norm1``/``norm2`` = ``layer_norm1``/``layer_norm2``, ``mlp``, no drop
    path).

    ``rounds=True`` is the project's extension (deviation 2): where this block's r exceeds ToMe's
    half-of-the-tokens cap, merge again on the size-weighted averaged metric until r tokens are gone.
    """

    def __init__(self, layer: nn.Module, tome_info: dict, rounds: bool = False):
        super().__init__()
        self.norm1, self.norm2, self.mlp = layer.layer_norm1, layer.layer_norm2, layer.mlp
        self.attn = OfficialToMeAttention(layer.self_attn)
        self.drop_path = nn.Identity()
        self._tome_info = tome_info
        self.rounds = rounds

    def _drop_path1(self, x):
        return self.drop_path1(x) if hasattr(self, "drop_path1") else self.drop_path(x)

    def _drop_path2(self, x):
        return self.drop_path2(x) if hasattr(self, "drop_path2") else self.drop_path(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """facebookresearch/ToMe @ af95e4b1befa172dadccd8c81e223b10090f9579, tome/patch/timm.py L34-56."""
        # Note: this is copied from timm.models.vision_transformer.Block with modifications.
        attn_size = self._tome_info["size"] if self._tome_info["prop_attn"] else None
        x_attn, metric = self.attn(self.norm1(x), attn_size)
        x = x + self._drop_path1(x_attn)

        r = self._tome_info["r"].pop(0)
        while r > 0:  # official: ``if r > 0:`` (one round; the loop only repeats with rounds=True)
            # Apply ToMe here
            merge, _ = official_bipartite_soft_matching(
                metric,
                r,
                self._tome_info["class_token"],
                self._tome_info["distill_token"],
            )
            done = min(r, (x.shape[1] - 1) // 2)
            if self._tome_info["trace_source"]:
                self._tome_info["source"] = official_merge_source(
                    merge, x, self._tome_info["source"]
                )
            self._tome_info["rep"] = merged_representatives(merge, self._tome_info["rep"])
            r = r - done if self.rounds else 0
            if r > 0:
                metric, _ = official_merge_wavg(merge, metric, self._tome_info["size"])
            x, self._tome_info["size"] = official_merge_wavg(merge, x, self._tome_info["size"])

        x = x + self._drop_path2(self.mlp(self.norm2(x)))
        return x


def merged_representatives(merge: Callable, rep: torch.Tensor) -> torch.Tensor:
    """For the comparison only: each merged row's destination token, with the official ``merge``.

    ``amax`` keeps a destination row's own value when every source (an A token) is -1; unmerged
    rows (the first ``t - t // 2 - r`` ones) are gathered from A unchanged.
    """
    t = rep.shape[1]
    masked = rep.clone()
    masked[:, ::2] = -1
    kept, dst = merge(rep, mode="amax"), merge(masked, mode="amax")
    n_unm = kept.shape[1] - t // 2
    return torch.cat([kept[:, :n_unm], dst[:, n_unm:]], dim=1)


def official_tome_forward(layers, x: torch.Tensor, r, rounds: bool = False):
    """The ToMe ViT forward (tome/patch/timm.py L106-111 with ``apply_patch(model, trace_source=True)``,
    L131-143: class token, no distillation token, proportional attention) from the first block's input,
    through ``layers`` (the blocks before LLaVA's feature layer). Returns (x, size, source,
    representatives)."""
    tome_info = {"r": 0, "size": None, "source": None, "trace_source": True, "prop_attn": True,
                 "class_token": True, "distill_token": False}
    blocks = [OfficialToMeBlock(layer, tome_info, rounds) for layer in layers]
    tome_info["r"] = official_parse_r(len(blocks), r)
    tome_info["size"] = None
    tome_info["source"] = None
    tome_info["rep"] = torch.arange(x.shape[1], dtype=torch.float32)[None, :, None]
    with torch.no_grad():
        for blk in blocks:
            x = blk(x)
    return x, tome_info["size"], tome_info["source"], tome_info["rep"][0, :, 0].long()


# ----------------------------------------------------------------------------------------------
# LLaVA-1.5-shaped CLIP towers
# ----------------------------------------------------------------------------------------------

class TowerBackend:
    """The parts of a ClipBackend that ToMe reads: the transformers CLIPModel."""

    vision_heads = HEADS

    def __init__(self, model):
        self.model = model
        self.name = f"random-vit-l-14-336-{model.config.vision_config.num_hidden_layers}layers"

    def modules(self):
        return self.model


@functools.cache
def make_tower(layers: int, seed: int = 0):
    """(CLIPModel, HF hidden states) for a random ViT-L/14-336-shaped tower (width 1024 at 24 layers,
    :data:`FAST_WIDTH` otherwise) and one random image."""
    from transformers import CLIPConfig, CLIPModel

    width = WIDTH if layers == 24 else FAST_WIDTH
    cfg = CLIPConfig(
        text_config=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2,
                         projection_dim=24, hidden_act="quick_gelu"),
        vision_config=dict(hidden_size=width, intermediate_size=4 * width, num_hidden_layers=layers,
                           num_attention_heads=HEADS, image_size=336, patch_size=14, hidden_act="quick_gelu",
                           projection_dim=24),
        projection_dim=24)
    torch.manual_seed(seed)
    model = CLIPModel(cfg).eval()
    model.requires_grad_(False)
    pixels = torch.randn(1, 3, 336, 336, generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        hs = model.vision_model(pixel_values=pixels, output_hidden_states=True).hidden_states
    return model, tuple(hs)


def inputs_for(layers: int, feature_layer: int = -2) -> SelectorInputs:
    model, hs = make_tower(layers)
    trace = VisionTrace(hidden_states=hs, grid=(GRID, GRID), num_prefix_tokens=1, backend=TowerBackend(model))
    return SelectorInputs(trace, feature_layer=feature_layer)


@functools.cache
def project_and_official(layers: int, feature_layer: int, budget: int, schedule=None, rounds=False):
    """(features, selection) of the project and (x, size, source, rep) of the transcription, computed once
    per case (budget 575 is checked by two tests)."""
    inputs = inputs_for(layers, feature_layer)
    model, hs = make_tower(layers)
    n_blocks = inputs.vision.layer_index(feature_layer)
    feats, sel = visual_features(inputs, "tome", budget,
                                 **({} if schedule is None else {"schedule": list(schedule)}))
    r = list(schedule) if schedule is not None else merge_schedule(576, budget, n_blocks)
    return (feats, sel), official_tome_forward(model.vision_model.encoder.layers[:n_blocks], hs[0], r, rounds)


def check_against_official(inputs: SelectorInputs, budget: int, schedule=None, rounds=False):
    """The project's selection equals the transcription's tokens, sizes, sources and representatives."""
    (feats, sel), (x, size, source, rep) = project_and_official(
        len(inputs.vision.hidden_states) - 1, inputs.feature_layer, budget,
        None if schedule is None else tuple(schedule), rounds)
    assert x.shape[1] == budget + 1 and len(sel) == budget
    torch.testing.assert_close(feats, x[0, 1:], atol=1e-5, rtol=1e-5)
    assert sel.indices.tolist() == (rep[1:] - 1).tolist()
    if source is None:   # K = N: no block merges, and the official code tracks no source or size
        assert budget == 576 and size is None
        assert sel.parts["assignment"].tolist() == list(range(576)) and set(sel.parts["size"].tolist()) == {1}
        return
    assert torch.equal(source[0, 0], torch.eye(577)[0])  # CLS: protected, first, alone
    assert torch.equal(source.sum(1), torch.ones(1, 577))  # every initial token in exactly one row
    assert sel.parts["assignment"].tolist() == (source[0, :, 1:].argmax(0) - 1).tolist()
    assert sel.parts["size"].tolist() == size[0, 1:, 0].long().tolist()
    assert all(source[0, i + 1, p + 1] == 1 for i, p in enumerate(sel.indices.tolist()))
    return sel


# ----------------------------------------------------------------------------------------------
# Tests
# ----------------------------------------------------------------------------------------------

def test_block_without_merging_equals_transformers():
    """r = 0 in every block: the project's block forward is transformers' CLIPEncoderLayer (1e-5)."""
    model, hs = make_tower(6)
    ar = torch.arange(577)
    state = ToMeState(hs[0], None, ar, ar.clone())
    with torch.no_grad():
        for i, layer in enumerate(model.vision_model.encoder.layers):
            tome_block(layer, state, 0)
            torch.testing.assert_close(state.x, hs[i + 1], atol=1e-5, rtol=1e-5)
    assert state.size is None and torch.equal(state.rep, ar)


def test_schedule_is_constant_with_the_remainder_first():
    assert merge_schedule(576, 64, 23) == [23] * 6 + [22] * 17
    assert merge_schedule(576, 192, 23) == [17] * 16 + [16] * 7
    assert merge_schedule(576, 576, 23) == [0] * 23
    assert merge_schedule(576, 570, 23) == [1] * 6 + [0] * 17
    assert merge_schedule(576, 8, 23) == [26] * 19 + [25, 25, 16, 8]  # the cap moves r to earlier blocks
    assert official_parse_r(23, 22) == [22] * 23  # ToMe's constant r (its int form)
    for blocks in (1, 2, 5, 23):
        for budget in range(1, 577):
            s, n = merge_schedule(576, budget, blocks), 576
            assert sum(s) == 576 - budget and min(s) >= 0
            within_cap = True
            for r in s:
                within_cap &= r <= n // 2
                n -= r
            assert within_cap == (576 <= budget * 2 ** blocks)  # beyond the cap only where nothing fits


@pytest.mark.parametrize("budget", [64, 128, 192])
def test_tome_matches_official(budget):
    """5 blocks before the feature layer (6-layer tower, hidden_states[-2])."""
    sel = check_against_official(inputs_for(6), budget)
    assert sel.parts["schedule"].tolist() == merge_schedule(576, budget, 5)
    assert sel.indices.tolist() != sorted(sel.indices.tolist())  # ToMe's order, not raster order
    assert len(set(sel.indices.tolist())) == budget


def test_tome_matches_official_with_a_given_schedule():
    """ToMe's list form of r (zero-padded by parse_r), starting after two plain blocks."""
    sel = check_against_official(inputs_for(6), 226, schedule=[0, 0, 200, 150])
    assert sel.parts["schedule"].tolist() == [0, 0, 200, 150, 0]


def test_budget_beyond_the_cap_merges_in_rounds():
    """One block before the feature layer: the official clamp leaves 288 tokens; rounds reach K."""
    inputs = inputs_for(6, feature_layer=1)
    model, hs = make_tower(6)
    x, *_ = official_tome_forward(model.vision_model.encoder.layers[:1], hs[0], [512])
    assert x.shape[1] == 1 + 288
    check_against_official(inputs, 64, rounds=True)


def test_full_budget_is_the_unmodified_tower():
    inputs = inputs_for(6)
    feats, sel = visual_features(inputs, "tome", 576)
    assert sel.features is None and sel.indices.tolist() == list(range(576))
    torch.testing.assert_close(feats, inputs.patches())
    check_against_official(inputs, 575)


def test_tome_needs_a_transformers_tower():
    from litelvlm.errors import UnsupportedModelError

    class OtherBackend(TowerBackend):
        def modules(self):
            return nn.Linear(2, 2)

    model, hs = make_tower(6)
    trace = VisionTrace(hidden_states=hs, grid=(GRID, GRID), num_prefix_tokens=1, backend=OtherBackend(model))
    with pytest.raises(UnsupportedModelError, match="transformers CLIP"):
        select("tome", SelectorInputs(trace), 64)


@pytest.mark.slow
@pytest.mark.parametrize("budget", [64, 8])
def test_tome_matches_official_vit_l(budget):
    """The full 24-layer ViT-L/14-336: 23 blocks before LLaVA's feature layer."""
    sel = check_against_official(inputs_for(24), budget)
    assert sel.parts["schedule"].tolist() == merge_schedule(576, budget, 23)


# ----------------------------------------------------------------------------------------------
# Through the pruned GLaMM pipeline (tiny random model, one real image)
# ----------------------------------------------------------------------------------------------

def test_tome_in_the_glamm_pipeline(coco128):
    from PIL import Image

    from litelvlm.glamm import GlammPipeline

    pipe = GlammPipeline.from_model_string("tiny-random:0")
    image = Image.open(sorted((coco128 / "images").iterdir())[0])
    prep = pipe.prepare(image, ["the object on the left", "the thing in the middle"])
    full = pipe.ground(prep, "none")
    for budget in (576, 192, 128, 64):
        out = pipe.ground(prep, "tome", budget)
        sel = out.selection
        assert out.masks.shape == full.masks.shape and out.prune_layer == 0
        assert out.seq_len == full.seq_len - (576 - budget)
        assert len(out.kept_indices) == budget == len(set(out.kept_indices.tolist()))
        assert int(sel.parts["size"].sum()) == 576
        if budget < 576:
            assert sel.features.shape == (budget, 32)  # the LLM receives the merged tokens, ToMe's order
            with torch.no_grad():
                emb = pipe.sequence_embeds(prep, pipe.model.project(sel.features))
                final = pipe.final_hidden(emb, torch.arange(emb.shape[1])[None])
            torch.testing.assert_close(out.seg_hidden, final[0, out.seg_positions])
            assert torch.isfinite(out.mask_logits).all()
    torch.testing.assert_close(pipe.ground(prep, "tome", 576).seg_hidden, full.seg_hidden)


#: Budgets 1..576 sampled for the default suite (every budget in the slow test below).
SAMPLED_BUDGETS = sorted({1, 2, 3, 17, 575, *range(5, 577, 61)})


@pytest.mark.parametrize("budget", SAMPLED_BUDGETS)
def test_tome_matches_official_at_sampled_budgets(budget):
    """5 blocks before the feature layer; the budgets beyond ToMe's half-per-block cap (K < 18) merge in
    rounds."""
    check_against_official(inputs_for(6), budget, rounds=576 > budget * 2 ** 5)


@pytest.mark.slow
def test_tome_matches_official_at_every_budget():
    inputs = inputs_for(6)
    for budget in range(1, 577):
        check_against_official(inputs, budget, rounds=576 > budget * 2 ** 5)
