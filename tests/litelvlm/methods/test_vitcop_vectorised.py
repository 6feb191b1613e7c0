"""ViTCoP's shallow co-pruning vectorised (one padded gather for the group means, one gather for the
selected and median rows, tensors for the medians) gives bit for bit what the per-group code gave: its
reference here is that code (the per-cluster list comprehension, the official token filter of
``tests/official_vitcop.py``), run on the tiny GLaMM in float32 and bfloat16 at several budgets, odd counts
and size-1 clusters among them."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from litelvlm.llm.context import LLMContext, run_layers
from litelvlm.methods import vitcop
from litelvlm.pruning.selection import Selection
from tests.official_vitcop import official_token_filter


def reference_run(ctx: LLMContext, st: vitcop.Settings) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(final, rows after layer s, rows after layer d): the per-group code (the merge of each cluster in a
    list comprehension, the medians a Python list)."""
    v, r, dn = vitcop.counts(st, ctx.num_visual, ctx.num_layers)
    stage1, labels = vitcop.vision_filter(ctx.prepared.selector_inputs(), v, st.cluster_percentage)
    tokens = ctx.pipeline.clip_selection_tokens(ctx.prepared, Selection(indices=stage1.cpu()),
                                                ctx.visual_embeds)
    run_ctx = LLMContext(ctx.pipeline, ctx.prepared, tokens, ctx.position_rule)
    vs, lm, s, d = run_ctx.image_start, ctx.lm, st.shallow, st.deep
    hidden, pos = run_ctx.hidden_before(s - 1), run_ctx.position_ids
    norms = vitcop.key_norms(lm, s - 1, hidden, pos)[vs:vs + v]
    hidden = run_layers(lm, hidden, pos, s - 1, s)
    sel, groups, medians = official_token_filter(labels, norms, r, 0)
    selected = torch.tensor(sel, dtype=torch.long)
    merged = [hidden[:, vs + m] + hidden[:, vs + torch.tensor(g)].mean(dim=1)
              for g, m in zip(groups, medians)]
    mid_tokens = torch.cat([hidden[:, vs + selected], *(t[:, None] for t in merged)], dim=1)
    order = torch.sort(torch.cat([selected, torch.tensor(medians, dtype=torch.long)]))
    rows = torch.cat([torch.arange(vs), vs + order.values, torch.arange(vs + v, hidden.shape[1])])
    hidden = torch.cat([hidden[:, :vs], mid_tokens[:, order.indices], hidden[:, vs + v:]], dim=1)
    hidden = run_layers(lm, hidden, rows[None], s, d - 1)
    norms = vitcop.key_norms(lm, d - 1, hidden, rows[None])[vs:vs + r]
    hidden = run_layers(lm, hidden, rows[None], d - 1, d)
    top = torch.topk(norms, dn, largest=False).indices
    keep = torch.cat([torch.arange(vs), top + vs, torch.arange(vs + r, hidden.shape[1])]).unique(sorted=True)
    final = lm.norm(run_layers(lm, hidden.index_select(1, keep), keep[None], d, ctx.num_layers))
    return final, order.values, order.values[keep[vs:vs + dn] - vs]


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_the_vectorised_run_is_the_per_group_code_bit_for_bit(dtype, tiny_glamm, tiny_glamm_bf16):
    pipe = tiny_glamm if dtype == torch.float32 else tiny_glamm_bf16
    image = Image.fromarray(np.random.default_rng(0).integers(0, 255, (336, 336, 3), dtype=np.uint8))
    prep = pipe.prepare(image, ["the dog"])
    cluster_sizes, parities = set(), set()
    for budget in (1, 7, 64, 193, 400, 575):
        ctx = LLMContext(pipe, prep, pipe.visual_tokens(prep), None)
        st = vitcop.settings(budget, ctx.num_visual, ctx.num_layers)
        with torch.no_grad():
            run = vitcop.vitcop_run(ctx, st)
            final, shallow, deep = reference_run(ctx, st)
        assert torch.equal(run.shallow, shallow) and torch.equal(run.deep, deep), budget
        assert run.final.dtype == dtype and torch.equal(run.final, final), budget
        v = vitcop.counts(st, ctx.num_visual, ctx.num_layers)[0]
        cluster_sizes |= set(torch.bincount(run.labels + 1).tolist())
        parities.add(v % 2)
    assert 1 in cluster_sizes and parities == {0, 1}  # size-1 clusters, and odd and even counts, were met
