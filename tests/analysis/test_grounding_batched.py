"""``eval-grounding`` under GLaMM's official protocol puts an image's sampled expressions (up to 3) in one
multi-turn prompt, as GLaMM's evaluation does: the image is prepared once (vision tower and CLIP traces), and
each (method, budget) is one LLM forward for all of them, whose ``[SEG]`` rows give one mask per expression.
Families whose official protocol holds one expression per prompt (``sentences_per_prompt == 1``) run one
forward per expression, as their official code does (batching those would change the official arithmetic)."""

from __future__ import annotations

import pandas as pd
import pytest

from litelvlm.cli import main

pytestmark = pytest.mark.usefixtures("one_glamm_pipeline")


def test_an_images_expressions_share_one_prepare_and_one_forward_per_method_and_budget(coco128, tmp_path,
                                                                                       monkeypatch):
    from litelvlm.glamm import GlammPipeline

    prepared, grounded = [], []
    real_prepare, real_ground = GlammPipeline.prepare_image, GlammPipeline.ground_many

    def prepare_image(self, image, *a, **kw):
        prepared.append(getattr(image, "image", image).size)   # an image, or its pixels
        return real_prepare(self, image, *a, **kw)

    def ground_many(self, preps, method, budget, *a, **kw):
        grounded.extend((method, budget) for _ in preps)
        return real_ground(self, preps, method, budget, *a, **kw)

    monkeypatch.setattr(GlammPipeline, "prepare_image", prepare_image)
    monkeypatch.setattr(GlammPipeline, "ground_many", ground_many)
    out = tmp_path / "out"
    assert main(["eval-grounding", "--refer-dir", str(coco128), "--out", str(out), "--limit", "2",
                 "--methods", "none,litelvlm", "--budgets", "16,8"]) == 0
    rows = pd.read_parquet(out / "grounding.parquet")
    per_image = rows.groupby("image_id")
    assert len(prepared) == per_image.ngroups == 2                    # one vision pass per image
    # none, litelvlm@16, litelvlm@8 per image
    assert len(grounded) == 2 * 3
    sentences = per_image["sent_id"].nunique()
    # several expressions share one forward
    assert (sentences > 1).any()
    assert len(rows) == int(sentences.sum()) * 3
    assert set(rows["turn"]) == set(range(int(sentences.max())))       # one [SEG] turn per expression
