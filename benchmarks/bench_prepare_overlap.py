"""What eval-grounding's loader buys: images per second of the whole grounding of P images (decode, prepare,
prompt, ``ground``), each image's CPU part of preparing it (``GroundingPipeline.pixels``) made in turn on the
model's thread (``serial``), and made ahead on the loader's worker threads while the model works on the images
before (``overlapped``: ``litelvlm.data.prefetch.prefetched`` of ``with_pixels``, as eval-grounding runs it).
The two passes alternate (serial, overlapped, serial, ...) after one untimed warm-up pass, so that a load that
comes and goes hits both alike; the ratio is taken within one run. The passes' masks are compared with the
first pass's (equal on a CPU, the pixels being the same; a GPU's nondeterministic kernels may flip some, which
is counted, not failed).

    python benchmarks/bench_prepare_overlap.py --threads 1          # tiny GLaMM on the CPU, 16 COCO images
    python benchmarks/bench_prepare_overlap.py --device cuda --model glamm-7b-random --tokenizer DIR
    python benchmarks/bench_prepare_overlap.py --dry-run            # 2 images, one repeat

On a CPU the worker threads share the cores with the model (``--threads``: the model's), so the ratio there
says little of a GPU's, where the model's time is the device's and the pixels are host work.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import pandas as pd
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench_layer_dtype import cpu_flags  # noqa: E402

#: the modes timed, in their alternating order
MODES = ("serial", "overlapped")


def records(refer_dir: str, count: int) -> list:
    """The first ``count`` images' first expression of a REFER folder (cycled where it has fewer)."""
    from litelvlm.data.refer import load_refer

    first: dict = {}
    for r in load_refer(refer_dir, None, split="all"):
        first.setdefault(r.image_id, r)
    recs = list(first.values())
    return [recs[i % len(recs)] for i in range(count)]


def one_pass(pipe, recs: list, mode: str, method: str, budget) -> tuple[float, list[torch.Tensor]]:
    """(seconds, the masks) of grounding every record once, its pixels made in turn or ahead (``mode``)."""
    from analysis.common.grounding.grounding_scoring import with_pixels
    from litelvlm.data.prefetch import prefetched

    workers = 0 if mode == "serial" else 2
    masks = []
    start = time.perf_counter()
    with torch.no_grad():
        for rec, loaded, err in prefetched(recs, lambda r: with_pixels(pipe, r.image()), workers=workers):
            if err is not None:
                raise err
            image, pixels = loaded
            prep = pipe.with_sentences(pipe.prepare_image(pixels, seed=0), [rec.sentence])
            masks.append(pipe.ground(prep, method, budget).masks.cpu())
        if pipe.device.type == "cuda":
            torch.cuda.synchronize()
    return time.perf_counter() - start, masks


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="tiny-random:0")
    p.add_argument("--tokenizer", default=None, help="a full-size random GLaMM's tokenizer folder")
    p.add_argument("--device", default="cpu")
    p.add_argument("--refer-dir", default=str(Path(__file__).resolve().parents[2] / "shared" / "data"
                                              / "coco128_refer"))
    p.add_argument("--images", type=int, default=16)
    p.add_argument("--method", default="none")
    p.add_argument("--budget", type=int, default=None, help="the method's budget (none: all)")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, default=0, help="the model's torch threads (0: torch's default)")
    p.add_argument("--dry-run", action="store_true", help="2 images, one repeat")
    p.add_argument("--out", default=None, help="a folder for overlap.csv")
    a = p.parse_args(argv)
    if a.dry_run:
        a.images, a.repeats = 2, 1
    if a.images < 1 or a.repeats < 1:
        p.error("--images and --repeats must be at least 1")
    return a


def main(argv: list[str] | None = None) -> int:
    """Time both modes, print images per second and their ratio, and (``--out``) write overlap.csv."""
    a = parse_args(argv)
    if a.threads:
        torch.set_num_threads(a.threads)
    from litelvlm.budget import Budget
    from litelvlm.lvlm.captured_paths import install_paths
    from litelvlm.registry.families import load_pipeline

    if not Path(a.refer_dir).is_dir():
        print(f"bench_prepare_overlap: --refer-dir {a.refer_dir!r} is not a folder", file=sys.stderr)
        return 2
    pipe = load_pipeline(a.model, device=a.device, **({"tokenizer": a.tokenizer} if a.tokenizer else {}))
    install_paths(pipe, "captured" if pipe.device.type == "cuda" else "eager")   # eval-grounding's defaults
    recs = records(a.refer_dir, a.images)
    budget = Budget.ALL if a.budget is None else Budget.of(a.budget)
    print(f"CPU: {cpu_flags()}; threads {torch.get_num_threads()}; device {a.device}; model {a.model}; "
          f"{a.images} images; {a.method}")
    one_pass(pipe, recs, "overlapped", a.method, budget)   # warm-up: first calls, captures
    times: dict[str, list[float]] = {m: [] for m in MODES}
    reference, differ = None, 0
    for _ in range(a.repeats):
        for mode in MODES:
            seconds, masks = one_pass(pipe, recs, mode, a.method, budget)
            times[mode].append(seconds)
            reference = masks if reference is None else reference
            differ += sum(not torch.equal(x, y) for x, y in zip(masks, reference, strict=True))
    medians = {mode: float(pd.Series(t).median()) for mode, t in times.items()}
    rows = [{"model": a.model, "device": a.device, "method": a.method, "images": a.images, "mode": mode,
             "median_s": s, "images_per_s": a.images / s, "repeats": a.repeats, "masks_differing": differ}
            for mode, s in medians.items()]
    df = pd.DataFrame(rows)
    print(df.to_string(index=False, float_format=lambda v: f"{v:.3g}"))
    ratio = df["images_per_s"].iloc[1] / df["images_per_s"].iloc[0]
    said = "the same masks" if not differ else f"{differ} masks differ from the first pass's"
    print(f"overlapped over serial: {ratio:.2f}x images/s ({said})")
    if a.out:  # through the run folder's transaction, as the other benchmarks write theirs
        from litelvlm.runs.io import write_csv
        from litelvlm.runs.run_folder import RunFolder

        with RunFolder(a.out):
            write_csv(Path(a.out) / "overlap.csv", df.assign(overlap_speedup=ratio))
    return 0


if __name__ == "__main__":
    sys.exit(main())
