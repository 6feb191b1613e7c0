"""PosPad (``ground(positions="pad")``, :mod:`litelvlm.llm.positions_pad`): each maximal run of dropped visual
tokens replaced by one marker (the run's mean visual token, at its last token's original position, as
FocusUI's code places its ``<image_drop_end>``), the kept tokens at their original positions.

Checked on hand-made index sets (the runs, the markers' order, places and means), then on the tiny GLaMM
(1-D RoPE) and the tiny Sa2VA (M-RoPE) for CLIP-side methods at several budgets, by the LLM input ``ground``
builds: its length is text + K + runs, the kept tokens keep their original positions, each marker sits at its
run's last position with the run's mean embedding; ``keep``, ``renumber`` and ``official`` are the same as
the rule paths untouched by PosPad build them (the step's inputs through ``run_llm``), bit for bit; a merging
method and one pruning inside the LLM are refused by name with the reason; the batched forward pads as
``ground``; the ``--positions`` option is declared once and taken by every command that grounds with
pruning."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from PIL import Image

import litelvlm.lvlm.contract_steps as steps
from litelvlm.errors import LiteLVLMError
from litelvlm.llm.positions_pad import dropped_runs, pad_inputs
from litelvlm.lvlm.prune import clip_side
from litelvlm.method import Method
from litelvlm.registry.families import load_pipeline

MODELS = ("tiny-random:0", "sa2va-tiny-random:0")
BUDGETS = (1, 5, 16)


def test_dropped_runs_by_hand():
    # N = 10, kept 2, 3, 7: dropped 0-1, 4-6, 8-9
    assert dropped_runs(torch.tensor([7, 2, 3]), 10).tolist() == [[0, 1], [4, 6], [8, 9]]
    assert dropped_runs(torch.tensor([0, 9]), 10).tolist() == [[1, 8]]  # one run across the grid's rows
    assert dropped_runs(torch.arange(10), 10).shape == (0, 2)
    assert dropped_runs(torch.tensor([4]), 5).tolist() == [[0, 3]]


def test_pad_inputs_by_hand():
    full = torch.arange(10.0)[:, None] * torch.tensor([1.0, -2.0])  # token i is (i, -2 i)
    kept = torch.tensor([7, 2, 3])
    vis, idx = pad_inputs(full[kept], kept, full)
    # raster order; markers at each run's last token (1, 6, 9), the mean of the run (0.5, 5, 8.5)
    assert idx.tolist() == [1, 2, 3, 6, 7, 9]
    assert vis[:, 0].tolist() == [0.5, 2, 3, 5, 7, 8.5] and torch.equal(vis[:, 1], -2 * vis[:, 0])
    vis, idx = pad_inputs(full[kept], kept, full, anchor="first")
    assert idx.tolist() == [0, 2, 3, 4, 7, 8] and vis[:, 0].tolist() == [0.5, 2, 3, 5, 7, 8.5]
    every = torch.arange(10)
    vis, idx = pad_inputs(full, every, full)  # nothing dropped: the inputs as they are
    assert vis is full and torch.equal(idx, every)
    with pytest.raises(LiteLVLMError, match="no single visual token"):
        pad_inputs(full[:2], torch.tensor([-1, 3]), full)
    with pytest.raises(LiteLVLMError, match="anchor must be one of last, first"):
        pad_inputs(full[kept], kept, full, anchor="middle")


def test_a_method_declaring_pad_needs_single_tokens_at_the_input():
    with pytest.raises(ValueError, match="positions 'pad' needs single visual tokens"):
        Method("clip", lambda inputs, k: None, positions="pad", original_positions=False)


@pytest.fixture(scope="module")
def pipes():
    """{model: (pipeline, a prepared 200 x 160 random image with one expression)}, loaded on first use."""
    image = Image.fromarray(np.random.default_rng(0).integers(0, 255, (160, 200, 3), dtype=np.uint8))
    cache = {}

    def get(model):
        if model not in cache:
            pipe = load_pipeline(model)
            cache[model] = pipe, pipe.prepare(image, ["the dog on the left"])
        return cache[model]
    return get


@pytest.fixture
def llm_inputs(monkeypatch):
    """The (embeds, position ids) of every standard LLM forward ``ground`` runs, in order."""
    seen = []
    final_hidden = steps.final_hidden

    def spy(pipe, embeds, position_ids, num_visual=None):
        seen.append((embeds.detach().clone(), position_ids.clone()))
        return final_hidden(pipe, embeds, position_ids, num_visual)
    monkeypatch.setattr(steps, "final_hidden", spy)
    return seen


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("method", ["litelvlm", "random"])
def test_pad_builds_kept_tokens_and_one_marker_per_run(pipes, llm_inputs, model, method):
    pipe, prep = pipes(model)
    n = pipe.num_visual(prep)
    full = pipe.layout(prep, n)
    s, tokens = full.image_start, pipe.visual_tokens(prep)
    for k in BUDGETS:
        out = pipe.ground(prep, method, k, positions="pad")
        embeds, pos = llm_inputs[-1]
        kept = out.kept_indices.long().cpu()
        runs = dropped_runs(kept, n)
        assert 0 < len(runs) <= k + 1 and out.position_rule == "pad"
        # the sequence: text + K kept + one marker per dropped run
        assert embeds.shape[1] == out.seq_len == full.seq_len - n + k + len(runs)
        visual = torch.sort(torch.cat([kept, runs[:, 1]])).values  # what each visual row stands for
        rows = torch.cat([torch.arange(s), s + visual, torch.arange(s + n, full.seq_len)])
        # every token at its original position (a marker: its run's last token's; M-RoPE: (t, h, w))
        assert torch.equal(pos.cpu(), full.positions(rows).cpu())
        # the kept tokens' inputs are keep's; each marker is its run's mean visual token
        pipe.ground(prep, method, k, positions="keep")
        keep_embeds = llm_inputs[-1][0]
        is_kept = torch.isin(visual, kept)
        torch.testing.assert_close(embeds[0, s:s + len(visual)][is_kept], keep_embeds[0, s:s + k],
                                   rtol=0, atol=0)
        means = torch.stack([tokens[a:b + 1].float().mean(0) for a, b in runs.tolist()]).to(embeds.dtype)
        torch.testing.assert_close(embeds[0, s:s + len(visual)][~is_kept], means.cpu(), rtol=1e-5, atol=1e-6)
        # the text around the image is the unpruned prompt's
        assert torch.equal(embeds[0, :s], keep_embeds[0, :s])
        assert torch.equal(embeds[0, s + len(visual):], keep_embeds[0, s + k:])


def _old_rule(pipe, prep, method: str, k: int, rule: str) -> torch.Tensor:
    """[SEG] states of ``rule`` (keep, renumber) as the rule paths PosPad leaves alone build them: the
    CLIP-side step's inputs (``clip_side``), their rows for ``keep``, ``run_llm``, the family's [SEG] read."""
    vis, sel = clip_side(pipe, prep, pipe.spec(method), k, None)
    kept = pipe.clip_selection_rows(prep, sel) if rule == "keep" else None
    with torch.no_grad(), pipe.seg_source() as states:
        final, layout = pipe.run_llm(prep, vis, kept)
        return states(final, layout.seg_predictors.to(final.device))[0]


@pytest.mark.parametrize("model", MODELS)
def test_keep_renumber_and_official_are_unchanged(pipes, model):
    pipe, prep = pipes(model)
    for method in ("litelvlm", "random"):
        official = pipe.official_rule(method)
        for k in BUDGETS:
            with torch.no_grad():
                got = {rule: pipe.ground(prep, method, k, positions=rule).seg_hidden
                       for rule in ("official", "keep", "renumber")}
            for rule in ("keep", "renumber"):
                assert torch.equal(got[rule], _old_rule(pipe, prep, method, k, rule)), (method, k, rule)
            assert torch.equal(got["official"], got[official])


@pytest.mark.parametrize("model", MODELS)
def test_merging_and_in_llm_methods_are_refused_with_the_reason(pipes, model):
    pipe, prep = pipes(model)
    with pytest.raises(LiteLVLMError, match=r"positions='pad': visionzip passes tokens that are no single "
                                            r"visual token \(\[CLS\], merged or recycled tokens\)"):
        pipe.ground(prep, "visionzip", 8, positions="pad")
    with pytest.raises(LiteLVLMError, match="positions='pad': fastv prunes inside the LLM; PosPad replaces"):
        pipe.ground(prep, "fastv", 8, positions="pad", layer=1)
    with pytest.raises(LiteLVLMError, match="positions='keep': visionzip passes tokens"):
        pipe.ground(prep, "visionzip", 8, positions="keep")  # keep's refusal as before
    with pytest.raises(LiteLVLMError, match="a sequence pruned inside the LLM has no markers"):
        ctx = pipe.context(prep)
        ctx.position_rule = "pad"
        ctx.pruned_positions(torch.arange(ctx.seq_len - 1), official="keep")


def test_the_batched_forward_pads_as_ground(pipes):
    pipe, prep = pipes("tiny-random:0")
    one = pipe.ground(prep, "random", 16, positions="pad")
    two = pipe.ground_many([prep, prep], "random", 16, positions="pad")
    assert [o.seq_len for o in two] == [one.seq_len] * 2 and {o.position_rule for o in two} == {"pad"}
    for out in two:
        torch.testing.assert_close(out.seg_hidden, one.seg_hidden, rtol=1e-4, atol=1e-5)


def test_positions_option_declared_once_for_every_grounding_command():
    from analysis.common.options.model_args import POSITION_CHOICES, POSITION_RULES
    from analysis.grounding.options import GroundingArgs
    from analysis.positions.compute import PAD_COLUMNS
    from analysis.validate.options import ValidateArgs
    from analysis.video.options import VideoArgs
    from litelvlm.lvlm.family import POSITION_SWITCH

    assert POSITION_CHOICES is POSITION_SWITCH and POSITION_RULES == ("keep", "renumber", "pad")
    fields = [{f.name: f for f in dataclasses.fields(cls)}["positions"]
              for cls in (GroundingArgs, VideoArgs, ValidateArgs)]
    assert all(f.default == "official" and f.metadata["choices"] == list(POSITION_CHOICES) for f in fields)
    assert len({f.metadata["help"] for f in fields}) == 1 and "PosPad" in fields[0].metadata["help"]
    assert "pad_markers" in PAD_COLUMNS
