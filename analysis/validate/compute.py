"""``litelvlm validate``: one real image through the whole pruned model, every method at every budget.

The model is loaded through the real loading path of its family (``litelvlm.registry.families.load_pipeline``:
a GLaMM-RefSeg folder, ``glamm-7b-random`` / ``tiny-random``, a UniPixel folder, ``unipixel-3b-random`` /
``unipixel-tiny-random``: a random model written once in its checkpoint layout and loaded back), and asked
only what the family contract declares. One image of ``--refer-dir`` and its sentences go through the family's
protocol (:mod:`analysis.validate.inputs`: GLaMM's official 3 sampled sentences in one multi-turn prompt;
UniPixel's one expression per prompt); the image's forwards (``prepare_image``) run once; then ``ground`` runs
for every (method, budget), the budgets planned against this image's N, and :mod:`analysis.validate.measure`
records the visual tokens the LLM received, the [SEG] positions, the mask shape and dtype, prefill and
end-to-end time, peak resident memory and stored activation memory. :mod:`analysis.validate.report` checks the
results (budget N with no pruning equals ``none``; no method changes the text tokens; masks have the image's
size) and writes ``validate.parquet``, ``validate.csv``, ``ratios.csv`` and ``report.md`` (with the paper's
figures beside the measured ratios), and ``stages.csv`` / ``stages.png``: one more call per run, the whole
grounding call from the image, timed by stage (:mod:`litelvlm.cost.stages`). With ``--device cuda`` the same
command is the GPU validation.
Every (method, budget) row is kept under ``OUT/parts`` as it finishes; a re-run resumes, and a re-run
with other methods or budgets adds their rows to the same table.
"""

from __future__ import annotations

import hashlib
import logging
import sys
import tempfile
import zlib
from pathlib import Path

import pandas as pd
import torch
from tqdm.auto import tqdm

from analysis.common.grounding.grounding_runs import clip_record, method_options, pick_image, prompt_records
from analysis.common.grounding.model_setup import quantize_kwargs, study_numerics
from analysis.common.measures.stage_costs import forwards_rerun, less_tower_ms, tower_rerun
from analysis.common.presentation.caveats import TIMING_KEY
from analysis.common.presentation.degenerate import warn_if_degenerate
from analysis.common.presentation.stage_plots import STAGE_FILES, stage_row, timing_record
from analysis.common.runs.command import Screen
from analysis.common.runs.identity import run_identity
from analysis.common.runs.run_record import run_record, torch_thread_count
from analysis.common.runs.study import llm_attn_record, portable_paths
from analysis.validate import prefill as pf
from analysis.validate.call_roofline import add_stage_rooflines
from analysis.validate.inputs import check_methods, plan_runs
from analysis.validate.inputs import text_tokens as prompt_text_tokens
from analysis.validate.measure import PeakRSS, RunProbe, timed_ms
from analysis.validate.options import ValidateArgs
from analysis.validate.reference import (
    COMPARED,
    REFERENCE_FILE,
    check_compare,
    load_compare,
    load_reference,
    mask_agreement,
    save_reference,
)
from analysis.validate.report import ROW_COLUMNS, write_report
from analysis.validate.rounds import measure_rounds, median_row
from analysis.validate.video import pick_video
from analysis.validate.weights import weights_mb
from litelvlm.budget import Budget
from litelvlm.cost.stages import time_stages
from litelvlm.cost.tokens import selects_on_clip
from litelvlm.data.refer import ReferRecord
from litelvlm.image_resize import image_resize_kwargs
from litelvlm.llm.compiled import WARMUP_CALLS, compile_layers, default_mode
from litelvlm.lvlm.captured_paths import install_paths
from litelvlm.machine.busy import busy_warning
from litelvlm.methods import BASELINE, get_method
from litelvlm.methods.select import select
from litelvlm.models.random_weights import no_write
from litelvlm.registry.families import image_resize_record, load_pipeline
from litelvlm.registry.resolved_model import record
from litelvlm.runs.io import write_json, write_parquet
from litelvlm.runs.parts import PartStore
from litelvlm.runs.run_folder import RunFolder

log = logging.getLogger(__name__)

def part_id(method: str, k: int) -> int:
    """The stable id of the run of ``method`` at K = ``k`` in ``OUT/parts`` (runs of any plan share one
    folder)."""
    return zlib.crc32(f"{method}@{k}".encode())


def _run_order(col: pd.Series) -> pd.Series:
    """Sort key: ``none`` first, then methods by name; budgets from large to small."""
    if col.name == "method":
        return col.map(lambda m: "0" if get_method(m).baseline else "1" + m)
    return -col.astype(int)


def measure_pair(pipe, prep, method: str, budget: Budget, options: dict, reference: dict | None,
                 compare: dict | None = None, fresh=None, positions: str = "official", forwards=None) -> dict:
    """One row: ``ground`` for (method, budget) under :class:`~analysis.validate.measure.RunProbe`,
    plus the CLIP-side selection timed alone; the row's ``budget`` is K, ``budget`` counted against the
    input's full budget (``pipe.full_budget``); ``reference``: the ``none`` row's ids and masks; ``compare``:
    another run's (``--compare-to``) reference, whose masks this row's are compared with; ``fresh()``: the
    input made again (image forwards and prompt), whose whole grounding call is timed by stage
    (:mod:`litelvlm.cost.stages`; None: not timed); ``positions``: ``ground``'s position rule
    (``--positions``); ``forwards()``: the image's forwards made again, whose tower run a method running the
    tower itself is timed less (:func:`~analysis.common.measures.stage_costs.forwards_rerun`)."""
    k = budget.count(pipe.full_budget(prep))  # the row's K (a video: per frame)
    with torch.no_grad():
        # compile this length, untimed
        for _ in range(WARMUP_CALLS if pipe.compiled else 0):
            pipe.ground(prep, method, budget, positions=positions, **options)
        out, rec = RunProbe(pipe).probe(lambda: pipe.ground(prep, method, budget, positions=positions,
                                                            **options))
        # --prefill captured: what could not be captured, said once at the end
        pf.account_eager(pipe, f"{method}@{k}")
        spec = pipe.spec(method)
        sel_ms = float("nan")
        # a video: every frame's selection and projection
        if spec.prunes_in_vision_tower:  # the tower stage's own run: the tower's blocks choosing as they go
            sel_ms = timed_ms(lambda: spec.select(pipe.tower_context(prep), k, **options), pipe.device)[1]
        elif selects_on_clip(spec) and pipe.abilities.budget_unit == "frame":
            sel_ms = timed_ms(lambda: pipe.prune_frames(prep, method, k, **options), pipe.device)[1]
        elif selects_on_clip(spec):
            sel_ms = timed_ms(lambda: select(method, prep.selector_inputs(), budget, **options),
                              pipe.device)[1]
        # the whole call a user waits for, by stage: the input's forwards, the prompt, ground
        stages = less_tower_ms(pipe, time_stages(pipe, lambda: pipe.ground(
            fresh(), method, budget, positions=positions, **options))[1], forwards_rerun(spec, forwards)) \
            if fresh else None
    text_tokens = prompt_text_tokens(pipe, prep, pipe.num_visual(prep))
    masks = out.masks.cpu()
    row = {"method": method, "budget": k, "kind": spec.kind, "prune_layer": out.prune_layer,
           "llm_input_tokens": rec.llm_input_len,
           "visual_tokens_input": (rec.llm_input_len or 0) - text_tokens,
           "visual_tokens_kept": int(out.seq_len) - text_tokens, "text_tokens": text_tokens,
           "seq_len": int(out.seq_len), "seg_positions": " ".join(map(str, out.seg_positions.tolist())),
           "mask_shape": "x".join(map(str, masks.shape)),
           "mask_dtype": str(masks.dtype).replace("torch.", ""),
           "keeps_all_in_order": pipe.keeps_everything(prep, out),
           "mask_pixels": int(masks.sum()), "prefill_ms": rec.prefill_ms, "e2e_ms": rec.e2e_ms,
           "paper_prefill_ms": rec.paper_prefill_ms, "cuda_time_reading_ms": rec.cuda_time_reading_ms,
           "selection_ms": sel_ms, "peak_rss_gib": rec.peak_rss / 2**30,
           "activation_mb": rec.activation_bytes / 2**20,
           "llm_activation_mb": rec.llm_activation_bytes / 2**20, "repeats": 1, **stage_row(stages)}
    first_ids = rec.embedded_ids if rec.embedded_ids is not None else torch.empty(0, dtype=torch.long)
    if reference is None:
        row.update(text_ids_equal=True, masks_equal_none=True, max_logit_diff_none=0.0)
        row["_ids"], row["_masks"], row["_logits"] = first_ids, masks, out.mask_logits.float().cpu()
    else:
        row["text_ids_equal"] = bool(torch.equal(first_ids, reference["_ids"]))
        row["masks_equal_none"] = bool(torch.equal(masks, reference["_masks"]))
        row["max_logit_diff_none"] = float((out.mask_logits.float().cpu() - reference["_logits"]).abs().max())
    if compare is not None:
        row.update(mask_agreement(masks, out.mask_logits.float().cpu(), compare))
    return row


def _load(a: ValidateArgs):
    """(the pipeline of ``--model``, its load time in ms, the load's peak resident bytes)."""
    with PeakRSS() as load_rss, no_write(not a.write):  # --no-write: a random preset built in memory
        pipe, load_ms = timed_ms(lambda: load_pipeline(
            a.model, clip=a.clip, sam=a.sam, device=a.device, tokenizer=a.tokenizer,
            dtype=None if a.dtype == "auto" else getattr(torch, a.dtype),
            numerics=study_numerics(a, "official"),
            **image_resize_kwargs(a.image_resize), **quantize_kwargs(a)), torch.device("cpu"))
    if a.compile:  # the compiled prefill (litelvlm.llm.compiled): its record in the run's setup

        pipe.compiled = compile_layers(pipe.language_model.layers, mode=default_mode(a.device))
    # --prefill captured, --encoders (the image encoders captured on cuda by default)
    pipe.compiled = install_paths(pipe, a.prefill, a.capture, a.encoders) or pipe.compiled
    return pipe, load_ms, load_rss.peak


def say_eager_encoders(pipe, config: dict, out: Path | None) -> None:
    """Under captured encoders: the record of which encoder calls ran eagerly and why, taken again after the
    timed runs and written to ``out``'s config.json (None: a run with nothing measured keeps its record), and
    one screen line (stderr) per reason."""
    if out is not None and "encoders_eager" in config["stage_timing"]:
        config["stage_timing"] = timing_record(pipe)
        write_json(out / "config.json", config)
    timing = config["stage_timing"]
    for why, calls in timing.get("encoders_eager", {}).items():
        print(f"validate: --encoders {timing['encoders']}: encoder calls ran eagerly: {why} ({calls} calls)",
              file=sys.stderr)


def _config(a: ValidateArgs, pipe, image_id: int | str, out: Path, argv: tuple[str, ...] | None) -> dict:
    """The run's identity (``config.json``): every option but the methods, budgets, repeats and
    ``--compare-to`` (a re-run with others adds their rows), the image, the model's dtype and its paired
    CLIP's weights (None: the family pairs none); ``argv``, the command line, in its provenance record."""

    skip = ("out", "methods", "budgets", "repeats", "compare_to", "matmul_tflops", "write", "figures",
            # recorded when not their defaults (earlier folders resume)
            *(("positions",) if a.positions == "official" else ()),
            *(() if a.stage_costs else ("stage_costs",)),
            *(("prefill", "capture") if a.prefill == "eager" else ()), *(("encoders",) if a.encoders == "auto"
                                                                         else ()))
    config = {k: v for k, v in record(a).items() if k not in skip}
    # recorded for a family that has one
    config.update(image_resize_record(config.pop("image_resize"), a.model))
    config.update(paths=portable_paths(record(a), out), torch_threads=torch_thread_count(),
                  run=run_record(argv), **run_identity("validate", a.model))
    config.update(image_id=image_id, model_dtype=str(pipe.dtype)[6:], **clip_record(pipe),
                  seg_token_id=pipe.seg_token_id, **llm_attn_record(pipe.language_model))
    if a.layer_dtype == "auto":  # the arithmetic auto chose (compared on resume), and why (not compared)
        auto = pipe.layer_dtype_auto or {"asked": "auto", "layer_dtype": "model",
                                                            "reason": f"the {pipe.family} family runs its "
                                                           "weights' dtype"}
        config.update(layer_dtype=auto["layer_dtype"], layer_dtype_auto=auto)
    return config


def _prepare(a: ValidateArgs, pipe, recs: list, image, clip_methods: bool = False
             ) -> tuple[object, float, list, list | None]:
    """(the prepared image with its prompt, the image forwards' ms, the records in the prompt, GLaMM's turns);
    ``clip_methods``: the paired external CLIP's traces are made here too."""
    with torch.no_grad():
        base, prep_ms = timed_ms(lambda: pipe.prepare_image(image, seed=a.seed), pipe.device)
        picked, turns = prompt_records(pipe, recs, a.seed, a.max_sentences) if isinstance(
            recs[0], ReferRecord) else (recs, None)
        prep = pipe.with_sentences(base, [r.sentence for r in picked], turns)
        # a paired CLIP's forward (UniPixel; a video's frames) is per-input work, as GLaMM's CLIP's
        if clip_methods:
            prep_ms += timed_ms(prep.selector_inputs, pipe.device)[1]
    return prep, prep_ms, picked, turns


def _pick(a: ValidateArgs, tmp: str) -> tuple[list, object, str]:
    """(the records one prompt may hold, the image or a video's frames, where it is) of ``--refer-dir`` (an
    image model) or ``--video-dir`` (a video model: the first video's first clip and expression; its records
    have no ``image_id``)."""

    if a.model.card.input == "video":   # the model as its options resolved it
        rec, frames, root = pick_video(a, tmp)
        return [rec], frames, f"{root}/{rec.video} ({len(frames)} frames)"
    recs, image = pick_image(a)
    return recs, image, str(recs[0].image_path)


def run_validate(a: ValidateArgs, screen: Screen = Screen()) -> int:
    """``litelvlm validate`` with typed arguments (:func:`analysis.validate.run` is the entry point), in its
    locked ``--out`` folder: the measured calls (``parts/``, ``rounds/``) and the reference are kept as they
    finish; ``screen.argv``: the command line config.json records."""
    with RunFolder(a.out, direct=("parts", "rounds", REFERENCE_FILE), command="validate",
                   owned=STAGE_FILES) as folder:
        return _run_validate(a, folder, screen.argv)


def _run_validate(a: ValidateArgs, folder, argv: tuple[str, ...] | None) -> int:
    # > 60 lines: one run's steps in order: load, measure, check, write
    """The steps of one validate run in its locked folder."""
    # a video model's default input: the synthetic set, written here
    with tempfile.TemporaryDirectory() as tmp:
        recs, image, where = _pick(a, tmp)
        out = Path(a.out)
        pipe, load_ms, load_peak = _load(a)
        # a method the family cannot run is refused before the image's forwards
        methods = check_methods(a, pipe)
        clip_methods = (pipe.abilities.clip_side == "mapped" or pipe.abilities.budget_unit
                        == "frame") and any(pipe.spec(m).uses_clip for m in methods)
        # the paired external CLIP loaded now: its weights are the model's, its loading no call's
        if clip_methods:
            log.info("the paired CLIP %s is loaded for the methods that read it", pipe.clip.name)
        source = recs[0].image_id if isinstance(recs[0], ReferRecord) else recs[0].video   # an image, a video
        config = _config(a, pipe, source, out, argv)
        # N is known after the image's forwards: checked (and recorded) below where it depends on the image
        folder.resume(config, ignore=("num_visual",), record=pipe.num_visual_tokens is not None)
        prep, prep_ms, picked, turns = _prepare(a, pipe, recs, image, clip_methods)

    def forwards():  # the image's forwards made again (a tower method's call is timed less their tower run)
        return pipe.prepare_image(image, seed=a.seed)

    def fresh():  # the input made again, for the whole call timed by stage
        return pipe.with_sentences(forwards(), [r.sentence for r in picked], turns)
    n = pipe.num_visual(prep)  # N of this image (the same for every image of a fixed-grid family)
    full = pipe.full_budget(prep)  # the budget keeping everything: N, or a video's per-frame 576
    if pipe.num_visual_tokens is None:  # N depends on the image: part of the run's identity
        config["num_visual"] = n
        folder.resume(config)
    runs, skipped = plan_runs(methods, a.budgets, pipe, full)
    budget_of = {(m, b.count(full)): b for m, b in runs}  # a table's (method, K) -> the budget ground takes
    setup = {"load_ms": load_ms, "load_peak_rss_gib": load_peak / 2**30, "prepare_image_ms": prep_ms,
             "sentences": [r.sentence for r in picked], "questions": [q for q, _ in turns or []],
             "prompt_tokens": int(len(prep.input_ids)), "text_tokens": prompt_text_tokens(pipe, prep, n),
             "num_visual": n, "skipped_budgets": skipped, "image": where, "image_size": list(prep.image_size),
             "full_budget": full, "mask_shape": list(pipe.mask_shape(prep)),
             "model": pipe.describe(), "weights_mb": weights_mb(pipe),
             "compiled": pipe.compiled}
    store = PartStore(out)
    done = store.done()
    todo = [(m, k) for m, k in budget_of if part_id(m, k) not in done]
    reference = load_reference(out) if todo else None
    # --compare-to this run's own folder: its own unpruned masks (the agreement of pruning alone)
    itself = bool(a.compare_to) and Path(a.compare_to).resolve() == out.resolve()
    compare = load_compare(a.compare_to, prep, pipe) if a.compare_to and todo and not itself else None
    if todo and reference is None:
        # the checks' reference, also the warm-up: every measured row (``none`` included) is a later call
        reference = measure_pair(pipe, prep, BASELINE, Budget.ALL, {}, None)  # K = the input's full budget
        check_compare(compare, reference, a.compare_to)
        save_reference(out, reference)
    elif todo:  # a resumed run: one untimed warm-up call, as a fresh run's reference is
        with torch.no_grad():
            pipe.ground(prep, BASELINE, Budget.ALL)
        pf.account_eager(pipe, f"{BASELINE}@{full}")
    if todo:  # the whole call's warm-up too (the image's forwards: an encoder's capture, first kernels),
        with torch.no_grad():   # so that the first run timed by stage is not charged for it
            pipe.ground(fresh(), BASELINE, Budget.ALL)
    check_compare(compare, reference, a.compare_to)
    config["stage_timing"] = timing_record(pipe)  # how the stages were timed (not compared on resume)
    setup["config"] = config  # what the time-by-stage figure is titled with
    write_json(out / "config.json", config)  # staged: it reaches the folder with the tables
    compare = reference if itself and todo else compare
    log.info("%d of %d runs to measure (%d done)", len(todo), len(runs), len(runs) - len(todo))
    if a.repeats == 1:  # each run is kept as it finishes
        for method, k in tqdm(todo, desc="validate"):
            row = measure_pair(pipe, prep, method, budget_of[method, k], method_options(a, method, pipe),
                               reference, compare, fresh, a.positions, forwards)
            store.write([part_id(method, k)],
                        pd.DataFrame([{c: row[c] for c in ROW_COLUMNS + COMPARED if c in row}]))
    # rounds over every pair (A B C A B C ...), each call kept as it finishes, then the median per pair
    elif todo:
        calls = measure_rounds(out, todo, a.repeats, lambda m, k: measure_pair(
            pipe, prep, m, budget_of[m, k], method_options(a, m, pipe), reference, compare, fresh,
            a.positions, forwards))
        group = hashlib.sha256(repr(todo).encode()).hexdigest()[:12]  # the pairs timed in these rounds
        for (method, budget), rs in calls.items():
            store.write([part_id(method, budget)], pd.DataFrame([median_row(rs, group)]))
    if todo and pipe.device.type == "cpu":
        if busy := busy_warning():
            setup["busy"] = config[TIMING_KEY] = busy  # recorded: the figures drawn from this run say it too
            write_json(out / "config.json", config)
            print(f"validate: warning: {busy}", file=sys.stderr)
    frames = [f for f in store.frames() if not f.empty]
    rows = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=ROW_COLUMNS)
    rows["repeats"] = rows["repeats"].fillna(1).astype("int64") if "repeats" in rows else 1
    rows = rows.sort_values(["method", "budget"], key=_run_order, kind="stable").reset_index(drop=True)
    # the arithmetic limit, where known
    rows = pf.add_limits(rows, pipe, tflops := pf.resolve_tflops(a, pipe))
    rows = add_stage_rooflines(rows, pipe, tflops, lambda m, k: pipe.ground(  # each stage's, one counted call
        fresh(), m, budget_of.get((m, k), Budget.of(k)), positions=a.positions, **method_options(a, m, pipe)),
        a.stage_costs, lambda m: tower_rerun(pipe, pipe.spec(m), fresh()) if pipe.spec(m).uses_vision_tower
        else None)
    setup["limit_lines"] = pf.limit_lines(rows, tflops)
    write_parquet(out / "validate.parquet", rows)
    failed, lines = write_report(out, rows, setup, a, pipe, n)
    folder.drop_stale(setup.get("stage_files", []))  # no stage timed (parts of an earlier version): none kept
    # short: the weights, LiteLVLM's ratios per budget (report.md holds the tables), an overhead-bound warning
    print("\n".join(lines + [w for w in [pf.screen_warning(rows, a.prefill == "captured")] if w]))
    pf.say_eager(pipe)  # --prefill captured: each reason for eager layer calls once, with its runs
    say_eager_encoders(pipe, config, out if todo else None)
    warn_if_degenerate(log, "validate", len(rows) > 0 and not rows["mask_pixels"].any(), a.model, out)
    print(f"{len(rows)} runs -> {out} (report.md); checks {'FAILED: ' + failed if failed else 'passed'}")
    return 1 if failed else 0

