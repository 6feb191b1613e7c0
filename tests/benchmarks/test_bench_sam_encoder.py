"""benchmarks/bench_sam_encoder.py: its fused path calls the encoder's modules in the encoder's own order, and
its rows carry the roofline and the output's difference."""

from __future__ import annotations

import csv
import sys
from pathlib import Path
from types import SimpleNamespace

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

import bench_sam_encoder as bench  # noqa: E402

BUILD = bench.build


def _tiny():
    return BUILD(SimpleNamespace(arch="tiny", torch_dtype=torch.float32, device="cpu"))


def test_the_fused_path_equals_the_encoders_own_forward():
    """Each ViT layer through the compiled step (dynamo's eager backend on a CPU) gives the module's output,
    under both attention kernels."""
    from litelvlm.lvlm.numerics import set_attention

    sam = _tiny()
    size = sam.vision_encoder.config.image_size
    pixels = torch.randn(1, 3, size, size, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        for attn in ("eager", "sdpa"):
            set_attention(attn, sam)
            loop = bench.encoder_fn(sam.vision_encoder, "loop", "eager")(pixels)
            fused = bench.encoder_fn(sam.vision_encoder, "fused", "eager")(pixels)
            assert loop.abs().max() > 1e-3   # the filled weights: an output worth comparing
            torch.testing.assert_close(fused, loop, rtol=0, atol=0)


def test_the_dry_run_writes_a_row_per_kernel_and_path(tmp_path, monkeypatch):
    monkeypatch.setattr(bench, "build", lambda args: _tiny())
    bench.main(["--dry-run", "--out", str(tmp_path), "--paths", "loop", "fused", "--repeats", "1"])
    rows = list(csv.DictReader((tmp_path / "sam_encoder.csv").open()))
    assert [(r["attn"], r["path"]) for r in rows] == [("sdpa", "loop"), ("sdpa", "fused"), ("eager", "loop"),
                                                      ("eager", "fused")]
    for row in rows:
        assert float(row["roofline_ms"]) > 0 and float(row["over_roofline"]) > 0
        assert float(row["max_rel_diff"]) < 1e-5
