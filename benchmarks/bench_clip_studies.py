"""CLIP studies benchmark: `litelvlm reversal` cold vs from the feature cache, and `litelvlm sink` throughput.

Full-size ViT-L/14-336 CLIP (``vit-l-14-336-random``, random weights, real architecture) on the CPU:

* the reversal study end to end on the COCO-128 REFER sample (``--split all``), in paired,
  interleaved runs: each pair is a cold run (an empty vision-feature cache) and a warm rerun from
  that cache; the cold/warm ratio of each pair, median and spread (target: warm >= 20x faster);
* goal: a full RefCOCO val reversal (1,500 images) under 45 minutes on this machine, EXTRAPOLATED
  from the measured cold seconds per image of the sample (``--dtype``, default bfloat16);
* the sink study over every RefCOCO (UNC) val expression, in batches: seconds and sentences/s.

All figures come from one run of this script; timings are the studies' own (model loading
excluded), read from each run's ``config.json``.

    python benchmarks/bench_clip_studies.py [--model vit-l-14-336-random] [--dtype bfloat16] [--pairs 3]\n
    [--limit-sentences N] [--sink-limit N]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
from paired import report  # noqa: E402

from analysis.common.options.clip_args import CLIP_DTYPES  # noqa: E402

#: RefCOCO (UNC) val images and the goal for a full val reversal, in minutes
REFCOCO_VAL_IMAGES = 1500
FULL_VAL_GOAL_MIN = 45.0
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
    # long by design: one linear benchmark script (options, cold and warm runs, report)
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", default="vit-l-14-336-random")
    p.add_argument("--batch-size", type=int, default=8, help="images per vision forward")
    p.add_argument("--text-batch-size", type=int, default=256)
    p.add_argument("--dtype", default="bfloat16", choices=list(CLIP_DTYPES))
    p.add_argument("--pairs", type=int, default=3, help="cold/warm pairs (each cold run has a fresh cache)")
    p.add_argument("--limit-sentences", type=int, default=None, help="only the first N sentences (fewer "
                   "images)")
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
        common = ["reversal", "--model", a.model, "--refer-dir", str(refer), "--image-dir",
                  str(refer / "images"),
                  "--split", "all", "--batch-size", str(a.batch_size), "--text-batch-size",
                  str(a.text_batch_size), "--dtype", a.dtype]
        if a.limit_sentences:
            common += ["--limit-sentences", str(a.limit_sentences)]
        ratios, cold_per_image, same = [], [], True
        for i in range(a.pairs):  # A B, A B, ...: each warm run right after its own cold run
            cache = ["--cache-dir", str(tmp / f"features{i}")]
            cold, _ = run_cli([*common, *cache, "--out", str(tmp / f"cold{i}")])
            warm, _ = run_cli([*common, *cache, "--out", str(tmp / f"warm{i}")])
            n_img = cold["counts"]["images_scored"] + cold["counts"].get("images_skipped_unreadable", 0)
            same &= (tmp / f"cold{i}" / "reversal.parquet").read_bytes() == \
                (tmp / f"warm{i}" / "reversal.parquet").read_bytes()
            ratios.append(cold["seconds"] / max(warm["seconds"], 1e-9))
            cold_per_image.append(cold["seconds"] / n_img)
            print(f"  pair {i + 1}: cold {cold['seconds']:.1f} s ({cold['counts']['cache_misses']} misses), "
                  f"warm {warm['seconds']:.2f} s ({warm['counts']['cache_hits']} hits), {n_img} images")
        print(f"reversal, {a.model}, {a.dtype}, COCO-128 REFER (split all): "
              f"{cold['counts']['sentences_total']} sentences, {n_img} images, vision layers "
              f"{cold['layers']}; parquet byte-identical: {same}")
        print("  " + report("warm rerun speedup (cold / warm, study seconds)", ratios, target=20))
        per_image = statistics.median(cold_per_image)
        minutes = per_image * REFCOCO_VAL_IMAGES / 60
        verdict = "met" if minutes < FULL_VAL_GOAL_MIN else "MISSED"
        print(f"  full RefCOCO val reversal ({REFCOCO_VAL_IMAGES} images), EXTRAPOLATED from the median cold "
              f"{per_image:.3f} s/image measured on {n_img} images [{min(cold_per_image):.3f}, "
              f"{max(cold_per_image):.3f}]: {minutes:.1f} min (goal < {FULL_VAL_GOAL_MIN:g} min: {verdict})")

        sink_argv = ["sink", "--model", a.model, "--expressions", str(exprs), "--text-batch-size",
                     str(a.text_batch_size), "--out", str(tmp / "sink")]
        if a.sink_limit:
            sink_argv += ["--limit-sentences", str(a.sink_limit)]
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
