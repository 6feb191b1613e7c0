"""The notebook explorer's redraw: moving the budget slider between budgets whose selections are cached,
against the same move when each selection is computed first (one ``clip_side`` call a budget), in one run,
interleaved.

Prints the median and spread of milliseconds per slider move for both, and their ratio (target: a cached
redraw under 100 ms; MISSED when its median is not). Uses the tiny random GLaMM (``tiny-random:0``) and a toy
scene.

    python benchmarks/bench_explore_redraw.py [--moves 40] [--rounds 5]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--moves", type=int, default=40, help="slider moves per round")
    ap.add_argument("--rounds", type=int, default=5, help="rounds, each timing both kinds of move")
    ap.add_argument("--model", default="tiny-random:0")
    a = ap.parse_args()
    from litelvlm.explore import load
    from litelvlm.explore.notebook import sample_image
    from litelvlm.explore.widget import Explorer

    image, texts = sample_image(tempfile.mkdtemp(prefix="bench-explore-"))
    data = load(image, [texts[0], "the thing in the corner"], model=a.model, methods=["litelvlm"])
    ex = Explorer(data, precompute=False)
    rng = np.random.default_rng(0)
    cached, fresh = [], []
    for _ in range(a.rounds):
        budgets = [int(k) for k in rng.choice(np.arange(1, data.n + 1), size=a.moves, replace=False)]
        # the same budgets: first computed, then read
        for kind, out in (("fresh", fresh), ("cached", cached)):
            calls, t0 = data.calls, time.perf_counter()
            for k in budgets:
                ex.budget.value = k
            out.append((time.perf_counter() - t0) / a.moves * 1e3)
            assert (data.calls > calls) == (kind == "fresh")
        for k in budgets:  # the next round computes its budgets afresh
            data.selections.pop(("litelvlm", k), None)
    med_c, med_f = statistics.median(cached), statistics.median(fresh)
    ratios = sorted(f / c for f, c in zip(fresh, cached))
    print(f"redraw from cached selections: median {med_c:.1f} ms per move [{min(cached):.1f}, "
          f"{max(cached):.1f}] over {a.rounds} rounds of {a.moves} moves")
    print(f"redraw computing each selection: median {med_f:.1f} ms [{min(fresh):.1f}, {max(fresh):.1f}]")
    print(f"paired ratio fresh/cached: median {statistics.median(ratios):.2f} [{ratios[0]:.2f}, "
          f"{ratios[-1]:.2f}]")
    print(f"target: cached redraw < 100 ms: {'met' if med_c < 100 else 'MISSED'}")


if __name__ == "__main__":
    main()
