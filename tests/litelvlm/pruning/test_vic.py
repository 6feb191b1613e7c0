"""VIC and ViTCoP's clustered co-pruning (:mod:`litelvlm.pruning.vic`) against the transcription of the
official code (chaser682/ViTCoP @ 627f632, ``LLaVA/llava/model/multimodal_encoder/utils.py`` L27-170 and
``LLaVA/llava/model/language_model/vitcop_modeling_llama.py`` L1191-1288, in ``tests/official_vitcop.py``)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from litelvlm.pruning.vic import token_filter_l2_norm_cluster, vic_labels
from tests.official_vitcop import VIC, official_token_filter


@pytest.mark.parametrize("n,percentage",
                         [(1, 0.12), (2, 0.5), (7, 0.18), (40, 0.12), (172, 0.12), (230, 0.15)])
def test_vic_labels_are_the_official_fit(n, percentage):
    g = torch.Generator().manual_seed(n)
    x = torch.randn(n, 16, generator=g) * 3
    pos = torch.rand(n, 2, generator=g)
    vic = VIC(dc=8, percentage=percentage, k=0.6)
    vic.fit(X=x.clone(), pos=pos)
    assert vic_labels(x, pos, dc=8, percentage=percentage, k=0.6).tolist() == vic.labels_.tolist()


@pytest.mark.parametrize("seed", range(6))
def test_token_filter_is_the_official_one_at_every_count(seed):
    """Random labels (noise -1 included, singletons, one cluster) and norms: every R in 1..V gives the
    official kept rows, merge groups and median positions."""
    g = torch.Generator().manual_seed(seed)
    v = (5, 23, 40, 7, 31, 12)[seed]
    clusters = (1, 4, 9, 7, 31, 3)[seed]
    labels = torch.randint(-1 if seed % 2 else 0, clusters, (v,), generator=g)
    norms = torch.rand(v, generator=g)
    for r in range(1, v + 1):
        selected, groups, medians = token_filter_l2_norm_cluster(labels, norms, r)
        ref_sel, ref_groups, ref_med = official_token_filter(labels, norms, r, 3)
        assert [x + 3 for x in selected.tolist()] == ref_sel
        assert [[x + 3 for x in gr.tolist()] for gr in groups] == ref_groups
        assert [m + 3 for m in medians.tolist()] == ref_med
        assert len(selected) + len(groups) == r, (seed, r)


def test_unit_vectors_make_no_difference_to_labels():
    """VIC on keys of one norm (cosine-like geometry) still matches (F.normalize'd input)."""
    x = F.normalize(torch.randn(50, 8, generator=torch.Generator().manual_seed(3)), dim=1)
    pos = torch.rand(50, 2, generator=torch.Generator().manual_seed(4))
    vic = VIC(dc=8, percentage=0.12, k=0.6)
    vic.fit(X=x.clone(), pos=pos)
    assert vic_labels(x, pos, dc=8, percentage=0.12).tolist() == vic.labels_.tolist()
