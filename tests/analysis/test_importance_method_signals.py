"""The pruning methods' own ranking scores as importance signals (``--method-signals``)."""

from __future__ import annotations

import pandas as pd
import pytest
import torch

from analysis.importance.signals import SignalKey, method_signals
from litelvlm.cli import main
from litelvlm.methods import ranking_methods


@pytest.fixture(scope="module")
def pipe_and_prep(tmp_path_factory):
    from litelvlm.data.fixtures import write_tiny_refer
    from litelvlm.data.refer import load_refer
    from litelvlm.glamm import GlammPipeline

    pipe = GlammPipeline.from_model_string("tiny-random:0")
    d = write_tiny_refer(tmp_path_factory.mktemp("refer"), sizes=((120, 160),))
    rec = load_refer(d, None, "refcoco", "unc", "val")[0]
    return pipe, pipe.prepare(rec.image(), [rec.sentence]), d


def test_every_method_signal_is_one_finite_score_per_token(pipe_and_prep):
    pipe, prep, _ = pipe_and_prep
    names = ranking_methods()
    assert {"vispruner", "visionzip", "prumerge", "prumerge+", "fastv", "dart", "hiprune",
            "ivc-prune"} <= set(names)
    out = method_signals(pipe, prep, names)
    assert set(out) == {SignalKey(f"method:{m}") for m in names}
    for v in out.values():
        assert v.shape == (pipe.num_visual_tokens,) and torch.isfinite(v).all() and v.std() > 0


def test_command_compares_method_signals_and_rejects_scoreless_methods(pipe_and_prep, tmp_path,
                                                                       one_glamm_pipeline):
    _, _, d = pipe_and_prep
    args = ["importance", "--refer-dir", str(d), "--limit", "1", "--max-sentences", "1", "--signals",
            "attention", "--no-per-head", "--n-boot", "10"]
    assert main([*args, "--out", str(tmp_path / "ok"), "--method-signals", "vispruner,dart"]) == 0
    rows = pd.read_parquet(tmp_path / "ok" / "importance.parquet")
    assert {"method:vispruner", "method:dart", "clip_rev_sim"} <= set(rows["clip_signal"])
    assert main([*args, "--out", str(tmp_path / "bad"), "--method-signals", "tome"]) == 2
    assert not (tmp_path / "bad").exists()
    assert main([*args, "--out", str(tmp_path / "typo"), "--method-signals", "fastvv"]) == 2
    assert not (tmp_path / "typo").exists()
