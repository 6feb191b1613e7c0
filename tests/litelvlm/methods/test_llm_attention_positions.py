"""The position switch (``ground(positions=...)``): every method's kept tokens keep their original RoPE
positions or are renumbered; ``official`` (the default) is each method's own rule (``Method.positions``)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from litelvlm.errors import LiteLVLMError
from litelvlm.llm.context import LLMContext, run_layers
from litelvlm.lvlm.family import POSITION_SWITCH, SequenceLayout
from litelvlm.methods import get_method, method_names

K = 9


def test_each_method_declares_its_official_rule():
    rules = {name: get_method(name).positions for name in method_names()}
    # pruned inside the LLM, positions gathered
    assert rules["fastv"] == rules["dart"] == rules["ivc-prune"] == "keep"
    assert rules["sparsevlm"] == "renumber"  # position_ids[:, :L'] (its L302)
    # downsample: its pooled tokens at their windows' centres (this project's reading)
    assert all(r == "renumber" for n, r in rules.items()
               if get_method(n).stage.name in ("clip", "llm-input") and n != "downsample")
    assert POSITION_SWITCH == ("official", "keep", "renumber", "pad")


def _manual(pipe, prep, rows_visual, positions: str, out=None):
    """Final hidden states of the LLM on the visual tokens ``rows_visual`` with explicit positions. The tokens
    are formed as ``ground`` forms them: a CLIP-side selection's (``out.selection``) projected on their own (a
    projection of K rows may round otherwise than rows of the projection of all N, depending on the CPU's
    GEMM), else rows of the N visual tokens."""
    lay = pipe.layout(prep, pipe.num_visual(prep))
    s, n = lay.image_start, lay.num_visual
    if positions == "keep":
        pos = torch.cat([torch.arange(s), s + rows_visual, torch.arange(s + n, lay.seq_len)])[None]
    else:
        pos = torch.arange(lay.seq_len - n + len(rows_visual))[None]
    if out is not None and pipe.spec(out.method).stage.name == "clip":
        visual = pipe.clip_selection_tokens(prep, out.selection)
    else:
        visual = pipe.visual_tokens(prep)[rows_visual]
    return pipe.final_hidden(pipe.sequence_embeds(prep, visual), pos)


def test_the_docs_name_each_rule_as_the_methods_declare_it():
    from pathlib import Path

    text = " ".join((Path(__file__).resolve().parents[3] / "docs" / "library.md").read_text().split())
    keep = sorted(n for n in method_names() if get_method(n).positions == "keep")
    refused = sorted(n for n in method_names() if not get_method(n).original_positions)
    assert f"`{'`, `'.join(keep[:-1])}` and `{keep[-1]}` keep the kept tokens' original positions" in text
    assert f"`keep` is refused for `{'`, `'.join(refused[:-1])}` and `{refused[-1]}`" in text


def test_input_level_methods_keep_or_renumber(tiny_glamm, tiny_glamm_prep):
    """A CLIP-side and an LLM-input method: ``keep`` runs the kept tokens at their unpruned positions (gaps
    where tokens were dropped), ``renumber`` (their official rule) at 0..S'-1; ``official`` is
    ``renumber``."""
    pipe, prep = tiny_glamm, tiny_glamm_prep
    with torch.no_grad():
        for method in ("litelvlm", "divprune", "random"):
            official = pipe.ground(prep, method, K)
            renumber = pipe.ground(prep, method, K, positions="renumber")
            keep = pipe.ground(prep, method, K, positions="keep")
            assert torch.equal(official.seg_hidden,
                               renumber.seg_hidden) and official.position_rule == "renumber"
            assert keep.position_rule == "keep" and torch.equal(keep.kept_indices, official.kept_indices)
            assert not torch.allclose(keep.seg_hidden, official.seg_hidden)  # the switch does something
            rows = keep.kept_indices.long()
            for out, rule in ((keep, "keep"), (renumber, "renumber")):
                final = _manual(pipe, prep, rows, rule, out)
                assert torch.equal(out.seg_hidden, final[0, out.seg_positions]), (method, rule)


def test_in_llm_methods_keep_or_renumber(tiny_glamm, tiny_glamm_prep):
    """FastV (official: keep) renumbered runs the kept rows from its layer on at 0..S'-1; its official run
    keeps the gathered positions."""
    pipe, prep = tiny_glamm, tiny_glamm_prep
    with torch.no_grad():
        official = pipe.ground(prep, "fastv", K)
        assert torch.equal(official.seg_hidden, pipe.ground(prep, "fastv", K, positions="keep").seg_hidden)
        renumber = pipe.ground(prep, "fastv", K, positions="renumber")
        assert renumber.position_rule == "renumber" and torch.equal(renumber.kept_indices,
                                                                    official.kept_indices)
        ctx = pipe.context(prep)
        s, n, layer = ctx.image_start, ctx.num_visual, official.prune_layer
        keep = torch.cat([torch.arange(s), s + official.kept_indices, torch.arange(s + n, ctx.seq_len)])
        hidden = run_layers(ctx.lm, ctx.hidden_before(layer)[:, keep], torch.arange(len(keep))[None], layer)
        assert torch.equal(renumber.seg_hidden, ctx.lm.norm(hidden)[0, renumber.seg_positions])
        assert not torch.allclose(renumber.seg_hidden, official.seg_hidden)
        # all N tokens: both rules are the unpruned positions
        none = pipe.ground(prep, "none")
        assert torch.equal(pipe.ground(prep, "none", positions="keep").seg_hidden, none.seg_hidden)


def test_a_two_stage_method_keeps_positions_at_both_stages(tiny_glamm, tiny_glamm_prep):
    """VScan (official: renumber) under ``keep``: its V merged tokens enter the LLM at their patches'
    positions, and the rows it keeps from its middle layer on keep theirs (its middle-layer choice, made with
    those positions, differs; the forward given that choice is transcribed here)."""
    pipe, prep = tiny_glamm, tiny_glamm_prep
    with torch.no_grad():
        official = pipe.ground(prep, "vscan", 64)
        keep = pipe.ground(prep, "vscan", 64, positions="keep")
        assert official.position_rule == "renumber" and keep.position_rule == "keep"
        stage1, layer = keep.selection.parts["stage1_kept"].long(), keep.prune_layer
        # the vision scans: no positions
        assert torch.equal(stage1, official.selection.parts["stage1_kept"].long())
        assert not torch.allclose(keep.seg_hidden, official.seg_hidden)
        from litelvlm.methods.vscan import vision_stage

        base = pipe.context(prep)
        tokens, rows1, _ = vision_stage(base, len(stage1))
        assert torch.equal(rows1, stage1)
        lay = pipe.layout(prep, pipe.num_visual(prep))
        s, n = lay.image_start, lay.num_visual
        pos = torch.cat([torch.arange(s), s + stage1, torch.arange(s + n, lay.seq_len)])[None]
        hidden = run_layers(pipe.language_model, pipe.sequence_embeds(prep, tokens), pos, 0, layer)
        rows2 = torch.searchsorted(stage1, keep.kept_indices.long())
        seq = torch.cat([torch.arange(s), s + rows2, torch.arange(s + len(stage1), hidden.shape[1])])
        final = pipe.language_model.norm(
            run_layers(pipe.language_model, hidden[:, seq], pos[..., seq], layer))
        assert torch.equal(keep.seg_hidden, final[0, keep.seg_positions])


def test_tokens_without_an_original_position_are_refused(tiny_glamm, tiny_glamm_prep):
    assert sorted(n for n in method_names() if not get_method(n).original_positions) == [
        "downsample", "prumerge", "prumerge+", "sparsevlm", "visionzip", "vitcop"]
    pipe, prep = tiny_glamm, tiny_glamm_prep
    with torch.no_grad():
        for method in ("visionzip", "prumerge"):  # a [CLS] (-1), a merged extra token (-2)
            with pytest.raises(LiteLVLMError, match="no single visual token"):
                pipe.ground(prep, method, K, positions="keep")
        with pytest.raises(LiteLVLMError, match="recycled tokens"):
            pipe.ground(prep, "sparsevlm", 64, positions="keep")
        with pytest.raises(LiteLVLMError, match="positions must be one of official, keep, renumber"):
            pipe.ground(prep, "none", positions="original")


def test_the_switch_on_a_second_family(tiny_glamm):
    """On the test family whose tokens are CLIP's grid transposed, ``keep`` gives a CLIP-side selection the
    positions of the family's own tokens (``clip_selection_rows``), not CLIP's raster indices."""
    from PIL import Image

    from tests.litelvlm.lvlm.test_family_contract import TransposedGlamm

    fam = TransposedGlamm(tiny_glamm.model, tiny_glamm.tokenizer, tiny_glamm.clip)
    prep = fam.prepare(Image.new("RGB", (52, 38), (30, 160, 90)), ["the left one"])
    with torch.no_grad():
        out = fam.ground(prep, "litelvlm", K, positions="keep")
        rows = torch.argsort(fam.order(prep))[out.kept_indices]  # CLIP raster index -> the family's token
        assert torch.equal(out.seg_hidden, _manual(fam, prep, rows, "keep", out)[0, out.seg_positions])
        for method in ("fastv", "divprune"):
            for rule in ("keep", "renumber"):
                got = fam.ground(prep, method, K, positions=rule)
                assert got.position_rule == rule and torch.isfinite(got.seg_hidden).all()


def test_renumbering_inside_the_llm_asks_the_family_for_multi_axis_positions():
    """``LLMContext.pruned_positions``: ``keep`` indexes the last axis of (3, 1, S) M-RoPE positions;
    ``renumber`` takes the family's positions of the shorter sequence (its ``layout``), whatever their
    shape."""
    s = 10

    def layout(prepared, k):
        t = torch.arange(s - 6 + k)
        return SequenceLayout(2, k, len(t), torch.stack([t, t // 2, t % 3])[:, None] + 100,
                              lambda: torch.tensor([len(t) - 1]))

    # no LLM: no limits
    fake = SimpleNamespace(layout=layout, numerics=None, language_model=None, name="fake")
    ctx = LLMContext(fake, None, torch.zeros(6, 4), position_rule="renumber")
    keep = torch.tensor([0, 1, 3, 5, 8, 9])
    assert torch.equal(ctx.pruned_positions(keep, official="keep"), layout(None, 2).position_ids)
    ctx.position_rule = None
    assert torch.equal(ctx.pruned_positions(keep, official="keep"), ctx.position_ids[..., keep])
    assert ctx.pruned_positions(keep, official="keep").shape == (3, 1, 6)


def test_eval_grounding_switches_positions(coco128, tmp_path, capsys):
    """``eval-grounding --positions``: keep changes FastV's nothing and LiteLVLM's results, renumber the
    reverse; a method with no original positions is refused under keep before anything is written."""
    import pandas as pd

    from litelvlm.cli import main

    args = ["eval-grounding", "--refer-dir", str(coco128), "--limit-images", "1", "--methods",
            "litelvlm,fastv", "--budgets", "16"]
    iou = {}
    for rule in ("official", "keep", "renumber"):  # pad refuses fastv (tests/litelvlm/llm)
        assert main([*args, "--positions", rule, "--out", str(tmp_path / rule)]) == 0
        rows = pd.read_parquet(tmp_path / rule / "grounding.parquet")
        iou[rule] = rows.set_index(["method", "sent_id"])["intersection"]
    assert iou["official"]["fastv"].equals(iou["keep"]["fastv"])
    assert iou["official"]["litelvlm"].equals(iou["renumber"]["litelvlm"])
    assert main([*args[:-4], "--methods", "visionzip", "--budgets", "16", "--positions", "keep",
                 "--out", str(tmp_path / "bad")]) == 2
    assert "visionzip passes tokens that are no single visual token" in capsys.readouterr().err
    assert not (tmp_path / "bad").exists()
    # pad: refused for a method pruning inside the LLM before anything is written (its markers are LLM inputs)
    assert main([*args, "--positions", "pad", "--out", str(tmp_path / "pad")]) == 2
    assert "--positions pad: positions='pad': fastv prunes inside the LLM" in capsys.readouterr().err
    assert not (tmp_path / "pad").exists()
