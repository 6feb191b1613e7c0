"""--dtype bfloat16 in the CLIP studies: its effect on the reversal AUROC and the sink shares is bounded.

Measured on the COCO-128 sample with tiny336-random (58 sentences): |dAUROC| <= 6e-4 per layer,
sink shares |d| <= 2e-3; the bounds below leave room for other random weights.
"""

from __future__ import annotations

import pandas as pd
import pytest

from litelvlm.cli import main


@pytest.mark.shared_data
def test_bfloat16_bounds_reversal_and_sink(coco128, tmp_path):
    for dt in ("float32", "bfloat16"):
        common = ["--refer-dir", str(coco128), "--model", "tiny336-random", "--limit", "40", "--dtype", dt,
                  "--no-cache"]
        assert main(["reversal", *common, "--out", str(tmp_path / f"rev_{dt}")]) == 0
        assert main(["sink", *common, "--out", str(tmp_path / f"sink_{dt}"), "--examples", "0"]) == 0
    a, b = (pd.read_csv(tmp_path / f"rev_{dt}" / "summary.csv") for dt in ("float32", "bfloat16"))
    a, b = a[a["breakdown"] == "all"], b[b["breakdown"] == "all"]
    d = (a.set_index("layer")["auroc_reversed_mean"] - b.set_index("layer")["auroc_reversed_mean"]).abs()
    assert len(d) >= 2 and d.max() <= 0.01
    sa, sb = (pd.read_parquet(tmp_path / f"sink_{dt}" / "sink.parquet") for dt in ("float32", "bfloat16"))
    for col in ("sos", "eos", "content_sum"):
        assert (sa[col] - sb[col]).abs().max() <= 0.01
    assert (sa["sos"] - sb["sos"]).abs().max() > 0  # bfloat16 really ran
