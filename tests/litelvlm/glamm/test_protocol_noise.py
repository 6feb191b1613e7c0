"""The official protocol's sampling noise (``litelvlm.glamm.protocol_noise``): counts on the real RefCOCO
expressions, and the variance formula against an exhaustive enumeration."""

from __future__ import annotations

import itertools
import json
import math
from collections import Counter

import numpy as np
import pytest

from litelvlm.glamm.protocol_noise import giou_run_sd, sampled_sentences


def test_variance_formula_matches_enumeration():
    """Every 3-subset of each image, equally likely: the exact SD of the mean equals the formula when the
    per-sentence IoUs have population SD sigma within each image."""
    rng = np.random.default_rng(0)
    images = []
    for n in (5, 7, 2, 3, 4):
        x = rng.normal(size=n)
        x = (x - x.mean()) / x.std() * 0.3 if n > 1 else x  # population SD exactly 0.3
        images.append(x)
    sums = []
    for subsets in itertools.product(
        *[list(itertools.combinations(range(len(x)), min(3, len(x)))) for x in images]):
        sums.append(sum(x[list(s)].sum() for x, s in zip(images, subsets)))
    total = sampled_sentences(len(x) for x in images)
    exact = np.std(np.array(sums) / total)
    assert math.isclose(exact, giou_run_sd([len(x) for x in images], sigma=0.3), rel_tol=1e-9)
    assert giou_run_sd([1, 2, 3]) == 0.0


def test_sampled_counts_on_real_refcoco(shared_data):
    """The official run scores 4,459 of val's 10,834 sentences (2,238 / 2,229 on testA / testB)."""
    folder = shared_data / "refcoco_unc_expressions"
    if not folder.is_dir():
        pytest.skip(f"real RefCOCO expressions not found at {folder}")
    expected = {"val": (10834, 4459), "testA": (5657, 2238), "testB": (5095, 2229)}
    for split, (n_all, n_sampled) in expected.items():
        items = json.loads((folder / f"{split}.json").read_text())["items"]
        counts = Counter(it["image"] for it in items).values()
        assert (len(items), sampled_sentences(counts)) == (n_all, n_sampled)
        sd = giou_run_sd(counts, sigma=0.3)
        assert 0.002 < sd < 0.006, sd  # about 0.35 points on val, 0.5 on testA/testB
