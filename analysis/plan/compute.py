"""``litelvlm plan``: the paper's tables as runs (model, dataset, split, method, budget) on the data found,
their time estimated from a short calibration on this machine, and the ``torch.distributed.run`` commands that
run them across the GPUs of one node, resumably, into one results tree
(``<results>/<family>/<dataset>_<split>``) that ``litelvlm figures --results`` draws.

One command per (model, dataset, split) runs every method and budget of that table: ``eval-grounding`` (or
``eval-video``) shards the images across the processes and resumes from its finished parts, so a stopped
command is simply started again. The calibration times the per-image work of ``eval-grounding`` itself
(:func:`analysis.common.grounding.grounding_scoring.evaluate_image` on the family's pipeline, loaded once per
model) on the first images of the first split found, after one untimed warm-up image, and extrapolates: a
run's estimate is its seconds per image times the split's images over ``--gpus``, labelled EXTRAPOLATED with
the calibration's n. Model loading, the statistics and the writing of the tables are not in it. Video runs
(``eval-video`` on Ref-DAVIS-17, Refer-YouTube-VOS and MeViS) are calibrated the same way per frame of an
expression (:mod:`analysis.plan.video`).
"""

from __future__ import annotations

import contextlib
import platform
import shlex
import sys
import time
from pathlib import Path

import torch
from tqdm.auto import tqdm

from analysis.common.grounding.grounding_runs import method_options, plan
from analysis.common.grounding.grounding_scoring import evaluate_image, image_prompts, output_rows
from analysis.common.grounding.model_setup import study_numerics
from analysis.grounding import GroundingArgs
from analysis.plan.layouts import Split, find_layouts
from analysis.plan.options import PlanArgs, check_args
from analysis.plan.timing import monotonic_in_budget, per_image
from analysis.plan.video import calibrate_video, refused
from litelvlm.budget import Budget
from litelvlm.data.refer import load_refer
from litelvlm.machine.busy import busy_warning
from litelvlm.methods import is_baseline
from litelvlm.registry.families import card_of, exif_transpose, load_pipeline
from litelvlm.runs.io import atomic_path, write_json
from litelvlm.runs.run_folder import RunFolder
from litelvlm.threads import default_threads, torch_threads

#: the launcher of every printed command (one node; ``--standalone`` picks a free rendezvous port)
LAUNCH = ["python", "-m", "torch.distributed.run", "--standalone"]


def grounding_command(a: PlanArgs, model: str, s: Split, methods: list[str], out: str) -> list[str]:
    """The ``eval-grounding`` command of one RefCOCO table (every method and budget on split ``s``)."""
    cmd = [*LAUNCH, "--nproc-per-node", str(a.gpus), "-m", "litelvlm.cli", "eval-grounding", "--model", model,
           "--refer-dir", s.root, "--dataset", s.dataset, "--split-by", s.split_by, "--split", s.split,
           "--methods", ",".join(methods), "--budgets", ",".join(map(str, a.budgets)), "--device", a.device,
           "--dtype", a.dtype, "--seed", str(a.seed), "--out", out]
    cmd += ["--clip", a.clip] if a.clip else []
    cmd += ["--image-dir", a.coco_images] if a.coco_images else []
    return cmd + (["--limit-images", str(a.limit_images)] if a.limit_images else [])


def video_command(a: PlanArgs, model: str, s: Split, methods: list[str], out: str) -> list[str]:
    """The ``eval-video`` command of one video table (Ref-DAVIS-17, Refer-YouTube-VOS or MeViS,
    ``--dataset``), launched as ``eval-grounding`` is."""
    cmd = [*LAUNCH, "--nproc-per-node", str(a.gpus), "-m", "litelvlm.cli", "eval-video", "--model", model,
           "--video-dir", s.root, "--dataset", s.dataset, "--split", s.split,
           "--methods", ",".join(m for m in methods if not is_baseline(m)),
           "--budgets", ",".join(map(str, a.video_budgets)), "--device", a.device, "--dtype", a.dtype,
           "--seed", str(a.seed), "--out", out]
    return cmd + (["--clip", a.clip] if a.clip else [])


def list_runs(a: PlanArgs, models: list[str], methods: list[str],
              splits: list[Split]) -> tuple[list, list, list]:
    """(runs, commands, notes): one run per (model, dataset, split, method, budget) of the paper's tables that
    the model's family runs on the splits found, the baseline once per table; one command per (model, dataset,
    split)."""
    runs, commands, notes = [], [], []
    for model in models:
        card = card_of(model)
        for s in splits:
            if s.kind == "image" and card.input != "image":
                continue
            if s.kind == "video" and card.video_eval is None:
                continue
            out = str(Path(a.tree) / card.name / f"{s.dataset}_{s.split}")
            table = methods
            if s.kind == "video":
                no = refused(model, methods, a.video_budgets)
                notes += [f"{model}: its video path does not run {m} ({why}): left out of its video tables"
                          for m, why in no.items() if s == next(x for x in splits if x.kind == "video")]
                table = [m for m in methods if m not in no]
            build = grounding_command if s.kind == "image" else video_command
            cmd = build(a, model, s, table, out)
            commands.append({"model": model, "family": card.name, "dataset": s.dataset, "split": s.split,
                             "out": out, "command": shlex.join(cmd)})
            budgets = a.budgets if s.kind == "image" else a.video_budgets
            pairs = [(m, Budget.ALL if is_baseline(m) else b) for m in table for b in budgets]
            for method, budget in dict.fromkeys(pairs):
                runs.append({"model": model, "family": card.name, "kind": s.kind, "dataset": s.dataset,
                             "split": s.split, "method": method, "budget": str(budget), "units": s.units,
                             "expressions": s.expressions, "out": out, "commanded": True,
                             **({"frames": s.frames} if s.kind == "video" else {})})
    return runs, commands, notes


def calibrate(a: PlanArgs, model: str, methods: list[str], s: Split) -> tuple[dict[tuple[str, str], float],
                                                                              int]:
    """Seconds per image of each (method, budget) of ``model`` on the first ``--calibrate`` images of split
    ``s`` (after one untimed warm-up image running every pair), the per-image work of ``eval-grounding``
    itself, and the number of images timed. Each timed image is prepared once, as a command does, and each
    pair grounded ``--repeats`` times on it; a pair's estimate is the median of its repeats (averaged over
    the images) plus its share of the preparation, made non-decreasing in the budget
    (:mod:`analysis.plan.timing`), on the model's thread count (one for a tiny model)."""
    g = GroundingArgs(refer_dir=s.root, out="", model=model, clip=a.clip, image_dir=a.coco_images,
                      dataset=s.dataset, split_by=s.split_by, split=s.split, methods=methods,
                      budgets=a.budgets, seed=a.seed, device=a.device, dtype=a.dtype)
    with torch_threads(a.threads if a.threads is not None else default_threads(model)):
        pipe = load_pipeline(model, clip=a.clip, device=a.device, numerics=study_numerics(g, g.protocol),
                             dtype=None if a.dtype == "auto" else getattr(torch, a.dtype))
        by_image: dict[int, list] = {}
        for r in load_refer(s.root, a.coco_images, s.dataset, s.split_by, s.split):
            by_image.setdefault(r.image_id, []).append(r)
        ids = sorted(by_image)[: a.calibrate + 1]
        images = {i: by_image[i][0].image(exif_transpose(pipe)) for i in ids}
        pairs = plan(methods, a.budgets, pipe.num_visual_tokens)
        timed = ids[1:] or ids
        with tqdm(total=len(pairs) * (1 + len(timed) * a.repeats), desc=f"plan: calibrating {model}",
                  unit="run") as bar:
            evaluate_image(pipe, g, by_image[ids[0]], images[ids[0]], pairs)   # warm-up, untimed
            bar.update(len(pairs))
            samples, prepare = _time_pairs(pipe, g, [(by_image[i], images[i]) for i in timed], pairs,
                                           a.repeats, bar)
    share = prepare / len(pairs)   # a command prepares each image once for all its pairs
    return monotonic_in_budget({k: per_image(v) + share for k, v in samples.items()}), len(timed)


def _time_pairs(pipe, g: GroundingArgs, timed: list, pairs: list, repeats: int,
                bar: tqdm) -> tuple[dict[tuple[str, str], list[list[float]]], float]:
    """(each pair's seconds, per timed image a list of ``repeats``; the mean seconds preparing an image)."""
    samples: dict[tuple[str, str], list[list[float]]] = {}
    prepare = []
    for records, image in timed:
        start = time.perf_counter()
        todo, prompts = image_prompts(pipe, g, records, image, pairs)
        prepare.append(time.perf_counter() - start)
        runs = {pair: [] for pair in todo}
        for _ in range(repeats):   # the pairs interleaved, so that a slow moment of the machine hits one run
            for method, budget in todo:
                start = time.perf_counter()
                for recs, prep, gts in prompts:
                    out = pipe.ground(prep, method, budget, positions=g.positions,
                                      **method_options(g, method, pipe))
                    output_rows(pipe, g, recs, gts, method, budget, out)
                runs[(method, budget)].append(time.perf_counter() - start)
                bar.update()
        for (method, budget), seconds in runs.items():
            key = (method, "all" if is_baseline(method) else str(budget))
            samples.setdefault(key, []).append(seconds)
    return samples, sum(prepare) / len(prepare)


def machine(device: str) -> str:
    """The processor the calibration ran on: the GPU's name on CUDA, else the CPU's model name."""
    if device.startswith("cuda"):
        return torch.cuda.get_device_name(torch.device(device))
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def estimate(a: PlanArgs, runs: list[dict], commands: list[dict], methods: list[str],
             splits: list[Split]) -> dict:
    """Fill each image run's and command's ``seconds`` (EXTRAPOLATED) from a calibration per model; returns
    the calibration's record (n, device, machine, seconds per image by model, method and budget)."""
    record = {"n": a.calibrate, "device": a.device, "machine": machine(a.device),
              "gpus": a.gpus, "seconds_per_image": {}, "video_n": 0, "seconds_per_frame": {}}
    if a.calibrate == 0:
        return record
    record.update(repeats=a.repeats, busy=None)
    estimate_video(a, runs, methods, splits, record)
    first = next((s for s in splits if s.kind == "image"), None)
    for model in dict.fromkeys(r["model"] for r in runs if r["kind"] == "image"):
        per, n = calibrate(a, model, methods, first)
        record["n"] = n
        record["seconds_per_image"][model] = {f"{m}@{b}": v for (m, b), v in per.items()}
        for r in runs:
            if r["model"] == model and r["kind"] == "image" and (r["method"], r["budget"]) in per:
                units = min(r["units"], a.limit_images or r["units"])
                r["seconds"] = per[(r["method"], r["budget"])] * units / a.gpus
                r["estimate"] = f"EXTRAPOLATED from n={n} image(s) of {first.dataset} {first.split}"
    for c in commands:
        c["seconds"] = sum(r.get("seconds", 0.0) for r in runs if r["out"] == c["out"])
    models = list(dict.fromkeys(r["model"] for r in runs)) or [None]
    record["busy"] = busy_warning(a.threads if a.threads is not None else default_threads(models[0]) or
                                  torch.get_num_threads())
    return record


def estimate_video(a: PlanArgs, runs: list[dict], methods: list[str], splits: list[Split],
                   record: dict) -> None:
    """Fill each video run's ``seconds`` (EXTRAPOLATED) from a calibration per model on the first video split
    (:func:`analysis.plan.video.calibrate_video`): seconds per expression-frame times the split's, over
    ``--gpus``."""
    first = next((s for s in splits if s.kind == "video"), None)
    for model in dict.fromkeys(r["model"] for r in runs if r["kind"] == "video"):
        table = list(dict.fromkeys(r["method"] for r in runs if r["model"] == model and r["kind"] == "video"))
        per, n, frames = calibrate_video(a, model, table, first)
        record["video_n"] = n
        record["seconds_per_frame"][model] = {f"{m}@{b}": v for (m, b), v in per.items()}
        for r in runs:
            if r["model"] == model and r["kind"] == "video" and (r["method"], r["budget"]) in per:
                r["seconds"] = per[(r["method"], r["budget"])] * r["frames"] / a.gpus
                r["estimate"] = (f"EXTRAPOLATED from n={n} video(s) ({frames} expression-frames) of "
                                 f"{first.dataset} {first.split}")


def _hours(seconds: float) -> str:
    return f"{seconds / 3600:.2f} h" if seconds >= 360 else f"{seconds:.1f} s"


def markdown(runs: list[dict], commands: list[dict], notes: list[str], record: dict) -> str:
    """plan.md: the tables as runs with their estimates, the commands in order, the notes."""
    lines = ["# Plan of the paper's tables", "",
             f"{len(runs)} runs in {len(commands)} commands, {record['gpus']} process(es) each.", ""]
    if record["seconds_per_image"] or record["seconds_per_frame"]:
        total = sum(r.get("seconds", 0.0) for r in runs)
        of = [f"n={record['n']} image(s)"] if record["seconds_per_image"] else []
        of += [f"n={record['video_n']} video(s) (per frame of an expression)"] if record[
            "seconds_per_frame"] else []
        lines += [f"Estimated time: {_hours(total)} in all, EXTRAPOLATED from a calibration of "
                  f"{' and '.join(of)} per model, method and budget on {record['device']} "
                  f"({record['machine']}), the median of {record.get('repeats', 1)} repeat(s) made "
                  "non-decreasing in the budget (this project's choice); model loading, statistics and "
                  "writing are not counted.", ""]
        if record.get("busy"):
            lines += [f"**BUSY MACHINE**: {record['busy']}.", ""]
    else:
        lines += ["No calibration (--calibrate 0): no time estimate.", ""]
    lines += ["| model | dataset | split | method | budget | units | expressions | estimate |",
              "|---|---|---|---|---|---|---|---|"]
    lines += [f"| {r['model']} | {r['dataset']} | {r['split']} | {r['method']} | {r['budget']} | "
              f"{r['units']} | {r['expressions']} | {_hours(r['seconds']) if 'seconds' in r else 'none'} |"
              for r in runs]
    lines += ["", "## Commands (each resumes where it stopped when started again)", "", "```"]
    for c in commands:
        est = f": {_hours(c['seconds'])} (EXTRAPOLATED)" if "seconds" in c else ""
        lines += [f"# {c['family']} {c['dataset']} {c['split']}{est}", c["command"]]
    lines += ["```", "", "Then: `litelvlm figures --results "
              f"{Path(commands[0]['out']).parent.parent if commands else 'TREE'}`"]
    lines += ["", "## Notes", ""] + [f"- {n}" for n in notes]
    return "\n".join(lines) + "\n"


def run_plan(a: PlanArgs) -> int:
    """Find the layouts, list the runs, calibrate, and write plan.json and plan.md into ``--out``; the
    commands are printed too."""
    dirs, models, methods = check_args(a)
    splits, notes = find_layouts(dirs)
    runs, commands, more = list_runs(a, models, methods, splits)
    notes += more
    if not runs:
        notes.append("no run: none of --models runs on the layouts found")
    record = estimate(a, runs, commands, methods, splits)
    out = Path(a.out)
    with RunFolder(out):
        plan = {"runs": runs, "commands": commands, "notes": notes, "calibration": record,
                "tree": a.tree, "methods": methods, "budgets": [str(b) for b in a.budgets],
                "video_budgets": [str(b) for b in a.video_budgets]}
        write_json(out / "plan.json", plan)
        with atomic_path(out / "plan.md") as tmp:
            tmp.write_text(markdown(runs, commands, notes, record))
    for n in notes:
        print(f"plan: note: {n}", file=sys.stderr)
    if record.get("busy"):
        print(f"plan: warning: the estimate is labelled BUSY: {record['busy']}", file=sys.stderr)
    print(f"plan: {len(runs)} runs in {len(commands)} commands -> {out}/plan.md")
    for c in commands:
        print(c["command"])
    return 0
