"""Foundation benchmark: tracing overhead, selection cost and batched text encoding (printed ratios).

Full-size ViT-L/14-336 CLIP (the LLaVA-1.5 / GLaMM tower) with random weights, on the CPU.
Every ratio is measured in one run from paired, interleaved A/B timings (``paired.py``): the
median over pairs with its min-max spread; a missed target is printed as MISSED.

    python benchmarks/bench_foundation.py [--repeats 5] [--one-at-a-time-sample 512]
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
from pathlib import Path

import torch

from litelvlm.clip import load_clip
from litelvlm.clip.random_init import save_random_hf_clip
from litelvlm.methods.select import select
from litelvlm.pruning import SelectorInputs

sys.path.insert(0, str(Path(__file__).resolve().parent))
from paired import paired_ratios, report  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
EXPRESSIONS = ROOT.parent / "shared" / "data" / "refcoco_unc_expressions" / "val.json"


def main() -> int:  # long by design: one linear benchmark script (options, setup, timed rounds, report)
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--texts-per-image", type=int, default=3)
    ap.add_argument("--one-at-a-time-sample", type=int, default=512,
                    help="real expressions encoded one at a time and batched, per pair")
    ap.add_argument("--batch-size", type=int, default=256)
    args = ap.parse_args()
    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as tmp:
        path = save_random_hf_clip(Path(tmp) / "clip", "vit-l-14-336", seed=0)
        clip = load_clip(str(path), "hf")
    vm, tm = clip.model.vision_model, clip.model.text_model
    pixels = torch.randn(1, 3, 336, 336)
    texts = ["the man in the red shirt on the left", "a white dog",
             "second cup from the right"][: args.texts_per_image]
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

    # paired, interleaved: each ratio comes from one A/B pair timed back to back
    trace = paired_ratios(traced, plain, args.repeats)
    share = paired_ratios(selection_only, vision_only, args.repeats)
    result = {"trace_ratio_median": statistics.median(trace), "trace_ratios": trace,
              "selection_share_median": statistics.median(share), "selection_shares": share,
              "torch_threads": torch.get_num_threads()}
    lines = [report("trace overhead, (traced + selection) / (plain vision + text)", trace, 1.10, False),
             report("selection / vision forward", share, 0.03, False)]
    if EXPRESSIONS.exists():
        items = json.loads(EXPRESSIONS.read_text())["items"]
        sample = random.Random(0).sample([it["text"] for it in items], args.one_at_a_time_sample)

        def one_at_a_time():
            for text in sample:
                clip.encode_text([text], hidden_states=False, warn_truncation=False)

        def batched():
            clip.encode_text(sample, batch_size=args.batch_size, hidden_states=False, warn_truncation=False)

        speed = paired_ratios(one_at_a_time, batched, max(3, args.repeats // 2), warmup=0)
        result.update({"n_texts": len(sample), "batch_speedup_median": statistics.median(speed),
                       "batch_speedups": speed})
        lines.append(report(f"batched text encoding speed-up over one at a time ({len(sample)} real RefCOCO "
                            "val expressions)", speed, 5.0))
    else:
        print(f"(skipping text throughput: {EXPRESSIONS} not found)", file=sys.stderr)
    print(json.dumps(result, indent=2))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
