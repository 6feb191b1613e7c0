"""What one numerics choice changes: kept tokens, masks and IoU of every method, two numerics side by side.

The images of ``--refer-dir`` go through GLaMM's official protocol (3 sampled sentences, one prompt)
twice, with the official numerics and with one choice switched (``--switch attn=sdpa``,
``clip_preprocess=transformers``, ``score_dtype=float32`` or ``clip_softmax=float32``), on the same random
weights. Printed per
method and budget: the share of images whose kept tokens are identical, the mean Jaccard overlap of
the kept sets (NaN where both keep no original token, e.g. SparseVLM keeping only recycled ones), the share of
mask pixels that flip, and the largest change of a sentence's IoU.

    python benchmarks/measure_numerics.py --refer-dir ../shared/data/coco128_refer --limit-images 6 \\
        --dtype bfloat16 --switch attn=sdpa
"""

from __future__ import annotations

import argparse
from dataclasses import replace

import pandas as pd
import torch

METHODS = ["litelvlm", "clip_topsim", "random", "vispruner", "visionzip", "prumerge", "prumerge+", "tome",
           "divprune", "sparsevlm", "fastv", "dart"]


def main() -> None:
    from analysis.common.grounding.grounding_runs import official_turns
    from analysis.common.grounding.grounding_scoring import mask_stats
    from litelvlm.data.refer import load_refer
    from litelvlm.glamm import GlammPipeline
    from litelvlm.lvlm.numerics import Numerics
    from litelvlm.registry.provenance import weights_banner

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--refer-dir", required=True)
    p.add_argument("--model", default="tiny-random:0")
    p.add_argument("--limit-images", type=int, default=6)
    p.add_argument("--budgets", default="64,16")
    p.add_argument("--dtype", default="bfloat16", choices=["float32", "bfloat16"])
    p.add_argument("--switch", default="attn=sdpa", help="FIELD=VALUE of Numerics to switch")
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args()
    field, value = a.switch.split("=")
    dtype = getattr(torch, a.dtype)
    variants = {"official": Numerics.official(), a.switch: replace(Numerics.official(), **{field: value})}
    pipes = {k: GlammPipeline.from_model_string(a.model, dtype=dtype, numerics=n) for k,
             n in variants.items()}
    records = load_refer(a.refer_dir, None)
    by_image: dict[int, list] = {}
    for r in records:
        by_image.setdefault(r.image_id, []).append(r)
    rows = []
    for image_id in sorted(by_image)[: a.limit_images]:
        recs = by_image[image_id]
        image = recs[0].image()
        picked, turns = official_turns(recs, a.seed, image_id, 3)
        outs = {}
        for k, pipe in pipes.items():
            prep = pipe.prepare(image, [r.sentence for r in picked], turns, seed=a.seed)
            with torch.no_grad():
                outs[k] = {(m, int(b)): pipe.ground(prep, m, int(b)) for m in METHODS
                           for b in a.budgets.split(",")}
        gts = [r.mask("sum") for r in picked]
        for key in outs["official"]:
            x, y = outs["official"][key], outs[a.switch][key]
            kx, ky = set(x.kept_indices.tolist()), set(y.kept_indices.tolist())
            mx, my = x.masks.cpu().numpy(), y.masks.cpu().numpy()
            d_iou = max(abs(mask_stats(mx[t], g)[2] - mask_stats(my[t], g)[2]) for t, g in enumerate(gts))
            rows.append({"method": key[0], "budget": key[1], "image_id": image_id, "same_tokens": kx == ky,
                         "jaccard": len(kx & ky) / len(kx | ky) if kx | ky else float("nan"),
                         "pixels_flipped": float((mx != my).mean()), "max_abs_d_iou": d_iou})
    df = pd.DataFrame(rows)
    table = df.groupby(["method", "budget"]).agg(same_tokens=("same_tokens", "mean"),
                                                 jaccard=("jaccard", "mean"),
                                                 pixels_flipped=("pixels_flipped", "mean"),
                                                 max_abs_d_iou=("max_abs_d_iou", "max"))
    print(f"official numerics vs {a.switch}, {a.dtype}, {df['image_id'].nunique()} images, {a.model}")
    with pd.option_context("display.width", 140):
        print(table.round(4).to_string())
    print(f"all: same kept tokens {df['same_tokens'].mean():.1%}, mean Jaccard {df['jaccard'].mean():.4f}, "
          f"pixels flipped {df['pixels_flipped'].mean():.2e}, max |dIoU| {df['max_abs_d_iou'].max():.4f}")
    if (line := weights_banner(a.model)):
        print(line)


if __name__ == "__main__":
    main()
