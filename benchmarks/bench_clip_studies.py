"""CLIP studies benchmark: `litelvlm reversal` cold vs from the feature cache, and `litelvlm sink` throughput.

Full-size ViT-L/14-336 CLIP (``vit-l-14-336-random``, random weights, real architecture) on the CPU:

* the reversal study end to end on the 128-image COCO-128 REFER sample (``--split all``),
  once with an empty vision-feature cache (cold) and once again from the cache (warm):
  seconds per image and their ratio (target: warm >= 20x faster);
* the sink study over every RefCOCO (UNC) val expression, in batches: seconds and sentences/s.

All figures come from one run of this script; timings are the studies' own (model loading
excluded), read from each run's ``config.json``.

    python benchmarks/bench_clip_studies.py [--model vit-l-14-336-random] [--sink-limit N]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("LITELVLM_SHARED_DATA", ROOT.parent / "shared" / "data"))


def run_cli(argv: list[str]) -> tuple[dict, float]:
    """Run one ``litelvlm`` command in-process; (its config.json, wall seconds)."""
    from litelvlm.cli import main

    t = time.perf_counter()
    rc = main(argv)
    wall = time.perf_counter() - t
    if rc != 0:
        sys.exit(f"command failed with status {rc}: litelvlm {' '.join(argv)}")
    out = Path(argv[argv.index("--out") + 1])
    return json.loads((out / "config.json").read_text()), wall


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", default="vit-l-14-336-random")
    p.add_argument("--batch-size", type=int, default=8, help="images per vision forward")
    p.add_argument("--text-batch-size", type=int, default=256)
    p.add_argument("--sink-limit", type=int, default=None, help="only the first N val expressions")
    a = p.parse_args()
    refer = DATA / "coco128_refer"
    exprs = DATA / "refcoco_unc_expressions" / "val.json"
    if not refer.is_dir() or not exprs.is_file():
        sys.exit(f"shared data not found under {DATA} (set LITELVLM_SHARED_DATA)")
    import torch

    print(f"torch threads: {torch.get_num_threads()}, model: {a.model}")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        # the random model is written once into the default cache; the features go to a fresh folder
        common = ["reversal", "--model", a.model, "--refer-dir", str(refer), "--image-dir", str(refer / "images"),
                  "--split", "all", "--batch-size", str(a.batch_size), "--text-batch-size", str(a.text_batch_size),
                  "--cache-dir", str(tmp / "features")]
        cold, cold_wall = run_cli([*common, "--out", str(tmp / "cold")])
        warm, warm_wall = run_cli([*common, "--out", str(tmp / "warm")])
        n_img = cold["counts"]["images_scored"] + cold["counts"].get("images_skipped_unreadable", 0)
        same = (tmp / "cold" / "reversal.parquet").read_bytes() == (tmp / "warm" / "reversal.parquet").read_bytes()
        print(f"reversal, {a.model}, COCO-128 REFER (split all): {cold['counts']['sentences_total']} sentences, "
              f"{n_img} images, vision layers {cold['layers']}")
        print(f"  cold: {cold['seconds']:.1f} s = {cold['seconds'] / n_img:.3f} s/image "
              f"(cache misses {cold['counts']['cache_misses']}; wall incl. model load {cold_wall:.1f} s)")
        print(f"  warm: {warm['seconds']:.1f} s = {warm['seconds'] / n_img:.4f} s/image "
              f"(cache hits {warm['counts']['cache_hits']}; wall incl. model load {warm_wall:.1f} s)")
        ratio = cold["seconds"] / max(warm["seconds"], 1e-9)
        print(f"  cold/warm ratio: {ratio:.1f}x (target >= 20x: {'met' if ratio >= 20 else 'NOT met'}); "
              f"parquet byte-identical: {same}")

        sink_argv = ["sink", "--model", a.model, "--expressions", str(exprs), "--text-batch-size",
                     str(a.text_batch_size), "--out", str(tmp / "sink")]
        if a.sink_limit:
            sink_argv += ["--limit", str(a.sink_limit)]
        sink, sink_wall = run_cli(sink_argv)
        n = sink["counts"]["sentences"]
        n_batches = -(-n // a.text_batch_size)
        print(f"sink, {a.model}, RefCOCO val expressions: {n} sentences in {n_batches} batches of "
              f"<= {a.text_batch_size}")
        print(f"  {sink['seconds_sink']:.1f} s = {n / sink['seconds_sink']:.0f} sentences/s "
              f"(truncated at 77 tokens: {sink['counts']['truncated']}; wall incl. model load and writing "
              f"{sink_wall:.1f} s)")


if __name__ == "__main__":
    main()
