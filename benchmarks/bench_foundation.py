"""Foundation benchmark: tracing overhead, selection cost and batched text encoding (printed ratios).

Full-size ViT-L/14-336 CLIP (the LLaVA-1.5 / GLaMM tower) with random weights, on the CPU.
All ratios are measured in one run, interleaved, with medians over repeats.

    python benchmarks/bench_foundation.py [--repeats 5] [--one-at-a-time-sample 512] [--full]
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

from litelvlm.clip import load_clip
from litelvlm.clip.random_init import save_random_hf_clip
from litelvlm.pruning import SelectorInputs, select

ROOT = Path(__file__).resolve().parents[1]
EXPRESSIONS = ROOT.parent / "shared" / "data" / "refcoco_unc_expressions" / "val.json"


def timed(fn, repeats: int) -> float:
    """Median wall time of ``fn()`` over ``repeats`` runs (one warm-up first)."""
    fn()
    ts = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t)
    return statistics.median(ts)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--texts-per-image", type=int, default=3)
    ap.add_argument("--one-at-a-time-sample", type=int, default=512,
                    help="time one-at-a-time encoding on this many expressions and extrapolate")
    ap.add_argument("--full", action="store_true", help="encode all expressions one at a time too")
    ap.add_argument("--batch-size", type=int, default=256)
    args = ap.parse_args()
    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as tmp:
        path = save_random_hf_clip(Path(tmp) / "clip", "vit-l-14-336", seed=0)
        clip = load_clip(str(path), "hf")
    vm, tm = clip.model.vision_model, clip.model.text_model
    pixels = torch.randn(1, 3, 336, 336)
    texts = ["the man in the red shirt on the left", "a white dog", "second cup from the right"][: args.texts_per_image]
    ids, eos, _ = clip.tokenize(texts)
    mask = (torch.arange(ids.shape[1])[None] <= eos[:, None]).long()

    def plain():
        with torch.no_grad():
            vm(pixel_values=pixels)
            clip.model.text_projection(tm(input_ids=ids, attention_mask=mask).pooler_output)

    state = {}

    def traced():
        v = clip.trace_image(pixels)
        t = clip.encode_text(texts, hidden_states=False)
        inp = SelectorInputs(v, t)
        with torch.no_grad():
            state["sel"] = select("litelvlm", inp, 192)
        state["inp"] = inp

    def vision_only():
        with torch.no_grad():
            vm(pixel_values=pixels)

    traced()
    inp = state["inp"]

    def selection_only():
        with torch.no_grad():
            select("litelvlm", inp, 192)

    # interleave the measurements so load changes hit all of them alike
    t_plain, t_traced, t_vision, t_sel = [], [], [], []
    for _ in range(args.repeats):
        t_plain.append(timed(plain, 1))
        t_traced.append(timed(traced, 1))
        t_vision.append(timed(vision_only, 1))
        t_sel.append(timed(selection_only, 3))
    p, tr, v, s = (statistics.median(x) for x in (t_plain, t_traced, t_vision, t_sel))

    result = {"plain_vision_plus_text_s": p, "traced_plus_selection_s": tr, "trace_ratio": tr / p,
              "vision_forward_s": v, "selection_s": s, "selection_share_of_vision": s / v,
              "torch_threads": torch.get_num_threads()}

    if EXPRESSIONS.exists():
        items = json.loads(EXPRESSIONS.read_text())["items"]
        all_texts = [it["text"] for it in items]
        t0 = time.perf_counter()
        clip.encode_text(all_texts, batch_size=args.batch_size, hidden_states=False, warn_truncation=False)
        t_batched = time.perf_counter() - t0
        sample = all_texts if args.full else random.Random(0).sample(all_texts, args.one_at_a_time_sample)
        t0 = time.perf_counter()
        for text in sample:
            clip.encode_text([text], hidden_states=False, warn_truncation=False)
        t_single = (time.perf_counter() - t0) * len(all_texts) / len(sample)
        result.update({"n_expressions": len(all_texts), "batched_s": t_batched,
                       "one_at_a_time_s": t_single, "one_at_a_time_extrapolated": not args.full,
                       "batch_speedup": t_single / t_batched})
    else:
        print(f"(skipping text throughput: {EXPRESSIONS} not found)", file=sys.stderr)

    print(json.dumps(result, indent=2))
    print(f"trace ratio (traced + selection) / (plain vision + text): {result['trace_ratio']:.3f}  (target <= 1.10)")
    print(f"selection / vision forward: {result['selection_share_of_vision']:.2%}  (target <= 3%)")
    if "batch_speedup" in result:
        note = " (one-at-a-time extrapolated from a sample)" if result["one_at_a_time_extrapolated"] else ""
        print(f"batched text encoding speed-up over one at a time, {result['n_expressions']} val expressions: "
              f"{result['batch_speedup']:.1f}x{note}  (target >= 5x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
