"""``litelvlm validate``: the full pruned GLaMM on one real image, every method and budget, with checks.

The CI version runs the tiny random GLaMM; the full-size one (GLaMM-7B + SAM-H + CLIP-L in bfloat16,
about 17 GB of memory and hours on a 2-core CPU without native bfloat16) is ``slow``-marked; what a
full-size run produced is committed under ``results/validate/``.
"""

from __future__ import annotations

import contextlib
import io
import math
import re
import shutil

import pandas as pd
import pytest
import torch

from litelvlm.cli import main
from tests.fixtures.kept_runs import keep, kept_run
from tests.fixtures.memory import skip_unless_free

METHODS = "litelvlm,vispruner,visionzip,fastv,sparsevlm,divprune"


def _tiny_argv(coco128, out) -> list[str]:
    """The tiny run's command line, writing ``out``."""
    return ["validate", "--refer-dir", str(coco128), "--out", str(out), "--methods", METHODS,
            "--budgets", "576,64", "--threads", "1", "--no-figures"]


def _make_tiny_run(coco128, folder) -> None:
    """The tiny run in ``folder / "out"``, kept with its screen and the (method, budget) of every ``ground``
    call it made, as they were passed (a pass-through spy on the loaded pipeline)."""
    import analysis.validate.compute as compute

    seen, load = [], compute.load_pipeline

    def spy_load(*args, **kwargs):
        pipe = load(*args, **kwargs)
        ground = pipe.ground

        def spy(prep, method="none", budget=None, **options):
            seen.append((method, budget))
            return ground(prep, method, budget, **options)

        pipe.ground = spy
        return pipe

    screen = io.StringIO()
    with contextlib.redirect_stdout(screen), pytest.MonkeyPatch.context() as mp:
        mp.setattr(compute, "load_pipeline", spy_load)
        assert main(_tiny_argv(coco128, folder / "out")) == 0
    keep(folder, screen.getvalue(), calls=seen)


@pytest.fixture(scope="module")
def tiny_run(coco128, session_folders):
    """The tiny run's folder, its screen and its ``ground`` calls; run once per test session (the xdist
    workers share it) for the tests that read it."""
    out, screen, noted = kept_run(session_folders, "validate-tiny-run", lambda t: _make_tiny_run(coco128, t))
    return out, screen, noted["calls"]


def test_tiny_validate_writes_table_report_and_passes_checks(tiny_run):
    out, screen, _ = tiny_run
    rows = pd.read_parquet(out / "validate.parquet")
    assert list(rows["method"].unique()) == ["none", *sorted(METHODS.split(","))]
    assert len(rows) == 1 + 6 * 2
    assert rows["text_ids_equal"].all()
    assert (rows["mask_dtype"] == "bool").all() and rows["mask_shape"].nunique() == 1
    assert (rows["seg_positions"].str.split().str.len() == 3).all()  # GLaMM samples 3 sentences
    # CLIP-side methods hand the LLM K tokens; FastV gets all 576 and keeps K after its layer
    lite = rows.set_index(["method", "budget"])
    assert lite.loc[("litelvlm", 64), "visual_tokens_input"] == 64
    assert lite.loc[("fastv", 64), "visual_tokens_input"] == 576 and lite.loc[("fastv", 64),
                                                                              "visual_tokens_kept"] == 64
    assert (rows["prefill_ms"] > 0).all() and (rows["llm_activation_mb"] > 0).all()
    # the paper's prefill (the decoder-layer loop) ends before the project's (at the final norm's end)
    assert ((rows["paper_prefill_ms"] > 0) & (rows["paper_prefill_ms"] <= rows["prefill_ms"])).all()
    assert (rows["cuda_time_reading_ms"] == rows["e2e_ms"]).all()  # on a CPU: the whole call, perf_counter
    checks = pd.read_csv(out / "checks.csv")
    assert len(checks) == 5 and checks["passed"].all()
    ratios = pd.read_csv(out / "ratios.csv")
    assert set(ratios["budget"]) == {576, 64}
    # the paper's GLaMM-7B numbers sit beside rows of its architecture only: none beside the tiny model's
    assert ratios[["paper_prefill_speedup", "paper_act_reduction", "paper_cuda_speedup"]].isna().all().all()
    assert {"paper_def_prefill_speedup", "cuda_time_reading_speedup",
            "paper_def_act_reduction"} <= set(ratios)
    report = (out / "report.md").read_text()
    assert "``paper_prefill_ms`` is the paper's prefill time" in report and "| paper_prefill_ms |" in report
    assert "Beside the paper's LiteLVLM figures" not in report
    assert "litelvlm@64 vs none, on the paper's definitions: prefill (decoder-layer loop)" in screen
    assert "CUDA" not in screen and "litelvlm@576" in screen  # CUDA-only quantities only on CUDA
    # every ratio names the sequence lengths it was measured at (none's, and the run's)
    seq = re.findall(r"^litelvlm@64.* \(sequence (\d+) -> (\d+) tokens\)", screen, re.M)   # Amdahl's: below
    assert len(seq) == 2 and all(int(a) - int(b) == 576 - 64 for a, b in seq), screen
    # the tiny model's ratios are shown, not judged against the paper's 7B targets; the weights are named
    assert screen.splitlines()[0].startswith("RANDOM WEIGHTS (tiny-random")
    assert "targets not judged: they are the paper's glamm-7b figures, this model is `tiny`" in screen
    assert "**MISSED**" not in report and "**MET**" not in report and "- not judged: the targets" in report
    assert "RANDOM WEIGHTS (tiny-random:0)" in report and "PASS: no method changes the text tokens" in report


def test_validate_resumes_from_its_parts(tiny_run, coco128, tmp_path, capsys):
    out = shutil.copytree(tiny_run[0], tmp_path / "out", symlinks=True)   # the shared run, left as it is
    before = (out / "validate.parquet").read_bytes()
    assert main(_tiny_argv(coco128, out)) == 0  # every (method, budget) is done: nothing is measured again
    assert (out / "validate.parquet").read_bytes() == before


def test_checks_name_the_failing_runs():
    from analysis.validate.checks import checks

    base = {"budget": 4, "keeps_all_in_order": True, "text_ids_equal": True, "masks_equal_none": True,
            "max_logit_diff_none": 0.0, "mask_shape": "2x3x5", "mask_dtype": "bool", "seg_positions": "7 9"}
    rows = pd.DataFrame([{**base, "method": "none"},
                         {**base, "method": "a", "text_ids_equal": False},
                         {**base, "method": "b", "max_logit_diff_none": 0.5},
                         {**base, "method": "c", "budget": 2, "keeps_all_in_order": False,
                          "masks_equal_none": False, "seg_positions": "7"}])
    got = checks(rows, n=4, sentences=2, image_size=(3, 5))
    assert got["no method changes the text tokens"] == ["a@4"]
    assert got["methods keeping all 4 tokens in order equal none"] == ["b@4"]
    assert got["one [SEG] position per sentence"] == ["c@2"]
    assert got["none is deterministic (equals the reference run)"] == []


def test_a_non_eager_kernel_is_checked_within_rounding_and_says_so():
    """On the eager path the unpruned-in-order runs equal none exactly; under SDPA, flash or a captured or
    compiled prefill they may differ by the model dtype's rounding (masks still equal), and the check's name
    states the tolerance; a failing check is named with its runs on the screen."""
    from analysis.validate.checks import ROUNDING, checks, failed_text, logit_tolerance

    assert logit_tolerance("eager", "eager", False, "float32") == 0.0
    assert logit_tolerance("sdpa", "eager", False, "float32") == ROUNDING["float32"] > 3.5e-11
    assert logit_tolerance("eager", "captured", False, "bfloat16") == ROUNDING["bfloat16"]
    assert logit_tolerance("eager", "eager", True, "float32") == ROUNDING["float32"]
    base = {"budget": 4, "keeps_all_in_order": True, "text_ids_equal": True, "masks_equal_none": True,
            "max_logit_diff_none": 0.0, "mask_shape": "2x3x5", "mask_dtype": "bool", "seg_positions": "7 9"}
    rows = pd.DataFrame([{**base, "method": "none"},
                         {**base, "method": "flowcut", "max_logit_diff_none": 3.5e-11},
                         {**base, "method": "b", "max_logit_diff_none": 0.5}])
    got = checks(rows, n=4, sentences=2, image_size=(3, 5), tolerance=1e-4)
    name = "methods keeping all 4 tokens in order equal none (masks equal, |logit difference| <= 0.0001)"
    assert got[name] == ["b@4"]
    assert failed_text(got) == f"{name} (failing: b@4)"
    assert failed_text(checks(rows.iloc[:2], n=4, sentences=2, image_size=(3, 5), tolerance=1e-4)) == ""


def test_targets_use_the_papers_definitions():
    """The prefill and activation targets (the paper's 2.2x and 2.3x) are judged on the paper's
    definitions."""
    from analysis.validate.report import target_lines

    r = pd.DataFrame(
        [{"method": "litelvlm", "budget": 192, "prefill_speedup": 1.5, "paper_def_prefill_speedup": 2.25,
                       "act_reduction": 1.2, "paper_def_act_reduction": 2.2, "frac_of_ideal": 0.95,
                       "selection_share": 0.01}])
    lines = target_lines(r)
    assert lines[0].startswith(
        "- prefill speedup (the paper's definition: the decoder-layer loop only): 2.25")
    assert lines[0].endswith("**MET**") and "storing activation" in lines[1] and lines[1].endswith(
        "**MISSED**")
    # each value in its target's unit: ratios with x, shares in percent
    assert ": 2.25x (target >= 2.2x)" in lines[0] and ": 95.0% (target >= 90%)" in lines[2]
    assert ": 1.0% (target < 2%)" in lines[3]
    assert target_lines(r, arch="scaled") == ["- not judged: the targets are the paper's glamm-7b figures, "
                                              "and this model is the `scaled` architecture (its ratios are "
                                              "shown below, for the mechanism only)"]


def test_full_size_random_model_needs_the_tokenizer_folder(coco128, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(
        ["validate", "--model", "glamm-7b-random", "--refer-dir", str(coco128), "--out", str(out)]) == 2
    assert "needs the slow GLaMM-RefSeg tokenizer folder" in capsys.readouterr().err


def test_random_checkpoint_with_a_real_tokenizer_folder_loads_back_in_bf16(shared_data, tmp_path):
    """The full-size writer's path on the tiny arch: the real slow tokenizer folder copied, bfloat16 built
    directly, size-cut shards, a ``litelvlm_random`` note; loading converts nothing and equals the model."""
    from litelvlm.glamm import load_glamm_checkpoint
    from litelvlm.glamm.checkpoint import read_state_dict
    from litelvlm.glamm.checkpoint_writer import save_random_glamm

    tok_dir = shared_data / "glamm_refseg_tokenizer"
    path = save_random_glamm(tmp_path / "ck", "tiny", seed=3, fmt="safetensors", dtype=torch.bfloat16,
                             tokenizer_dir=tok_dir, max_shard_bytes=1 << 20)
    shards = sorted(p.name for p in path.glob("model-*.safetensors"))
    assert len(shards) > 2 and (path / "model.safetensors.index.json").exists()
    assert (path / "tokenizer.model").read_bytes() == (tok_dir / "tokenizer.model").read_bytes()
    sd = read_state_dict(path)
    assert {t.dtype for t in sd.values() if t.is_floating_point()} == {torch.bfloat16}
    model, tok = load_glamm_checkpoint(path, dtype=torch.bfloat16)
    assert tok.convert_tokens_to_ids("[SEG]") == 32004
    emb = model.language_model.embed_tokens.weight
    assert emb.shape[0] == len(tok) and torch.equal(emb, sd["model.embed_tokens.weight"])
    assert not any(t.is_meta for t in model.parameters()) and not any(t.is_meta for t in model.buffers())


def test_shard_groups_cut_by_size():
    from litelvlm.glamm.checkpoint_writer import shard_groups

    sd = {k: torch.zeros(n) for k, n in {"a": 10, "b": 10, "c": 30, "d": 5}.items()}  # float32: 4 bytes each
    assert shard_groups(sd, max_shard_bytes=80) == [["a", "b"], ["c"], ["d"]]
    assert shard_groups(sd, shards=2) == [["a", "c"], ["b", "d"]]


@pytest.mark.slow
def test_full_size_validate_one_method(coco128, shared_data, tmp_path):
    skip_unless_free(22, "the full-size random GLaMM's validate (its peak: about 21 GiB)")
    out = tmp_path / "out"
    assert main(
        ["validate", "--model", "glamm-7b-random", "--tokenizer", str(shared_data / "glamm_refseg_tokenizer"),
                 "--refer-dir", str(coco128), "--out", str(out), "--methods", "litelvlm", "--budgets",
                 "192"]) == 0
    rows = pd.read_parquet(out / "validate.parquet")
    assert rows["visual_tokens_input"].tolist() == [576, 192]
    assert pd.read_csv(out / "checks.csv")["passed"].all()


def test_repeats_interleave_and_grow_the_same_folder(coco128, tmp_path):
    out = tmp_path / "out"
    base = ["validate", "--refer-dir", str(coco128), "--out", str(out), "--threads", "1", "--budgets", "64",
            "--no-figures"]
    assert main([*base, "--methods", "litelvlm", "--repeats", "2"]) == 0
    rows = pd.read_parquet(out / "validate.parquet")
    assert rows.set_index("method")["repeats"].to_dict() == {"none": 2, "litelvlm": 2}
    # each round's whole call, kept for the steadiness of the medians
    assert all(len([float(t) for t in kept.split()]) == 2 for kept in rows["stage_total_ms_rounds"])
    assert (out / "reference.safetensors").exists()  # the checks' reference, kept for resumed runs
    r = pd.read_csv(out / "ratios.csv").set_index("method").loc["litelvlm"]
    # the spread of the paired per-round ratios
    for ratio in ("prefill_speedup", "paper_def_prefill_speedup"):
        assert r[f"{ratio}_min"] <= r[ratio] <= r[f"{ratio}_max"] and math.isfinite(r[f"{ratio}_max"])
    assert main([*base, "--methods", "fastv"]) == 0  # other methods: their rows join the table (checked
    # against the kept reference: the text ids and masks of none)
    rows = pd.read_parquet(out / "validate.parquet")
    assert rows["method"].tolist() == ["none", "fastv", "litelvlm"]
    assert rows.set_index("method")["repeats"].to_dict() == {"none": 2, "fastv": 1, "litelvlm": 2}
    assert rows["text_ids_equal"].all() and pd.read_csv(out / "checks.csv")["passed"].all()
    r = pd.read_csv(out / "ratios.csv").set_index("method")
    assert math.isnan(r.loc["fastv", "prefill_speedup_min"])  # one call: no spread
    assert math.isfinite(r.loc["litelvlm", "prefill_speedup_min"])  # its rounds were the baseline's


def test_interrupted_rounds_resume_where_they_stopped(tmp_path):
    """``validate --repeats``: every call is kept as it finishes, so a run stopped in its second round redoes
    no finished call and its medians use every round in order."""
    from analysis.validate.report import ROW_COLUMNS
    from analysis.validate.rounds import measure_rounds

    calls = []

    def measure(method, budget, stop_after=None):
        if stop_after is not None and len(calls) == stop_after:
            raise KeyboardInterrupt
        calls.append((method, budget))
        return {**{k: 0 for k in ROW_COLUMNS}, "method": method, "budget": budget,
                "prefill_ms": float(len(calls))}

    todo = [("none", 576), ("litelvlm", 64)]
    with pytest.raises(KeyboardInterrupt):
        # round 0, then none of round 1
        measure_rounds(tmp_path, todo, 3, lambda m, b: measure(m, b, stop_after=3))
    assert calls == [("none", 576), ("litelvlm", 64), ("none", 576)]
    rows = measure_rounds(tmp_path, todo, 3, measure)
    assert calls[3:] == [("litelvlm", 64), ("none", 576), ("litelvlm", 64)]  # the rest, interleaved
    assert [r["prefill_ms"] for r in rows[("none", 576)]] == [1.0, 3.0, 5.0]
    assert [r["prefill_ms"] for r in rows[("litelvlm", 64)]] == [2.0, 4.0, 6.0]
    assert "round" not in rows[("none", 576)][0]


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_tiny_validate_on_cuda(coco128, tmp_path):
    out = tmp_path / "out"
    assert main(["validate", "--refer-dir", str(coco128), "--out", str(out), "--device", "cuda",
                 "--methods", "litelvlm,fastv", "--budgets", "64"]) == 0
    assert pd.read_csv(out / "checks.csv")["passed"].all()
    assert "on cuda" in (out / "report.md").read_text()


def test_compare_to_measures_mask_agreement_with_another_run(coco128, tmp_path, capsys):
    """``--compare-to``: each run's masks against another run's unpruned masks (IoU and logit difference); the
    run's own folder gives the agreement of pruning alone (1.0 for none); a folder of another prompt, or no
    validate folder, is refused with exit 2 naming it, before anything is measured."""
    base = ["validate", "--refer-dir", str(coco128), "--threads", "1", "--methods", "litelvlm", "--budgets",
            "64", "--no-figures"]
    own = tmp_path / "fp32"
    assert main([*base, "--out", str(own), "--compare-to", str(own)]) == 0
    rows = pd.read_csv(own / "validate.csv").set_index("method")
    assert rows.loc["none", "mask_iou_vs_compare"] == 1.0 and rows.loc["none", "logit_diff_vs_compare"] == 0.0
    assert 0.0 <= rows.loc["litelvlm", "mask_iou_vs_compare"] <= 1.0
    other = tmp_path / "bf16"
    assert main([*base, "--dtype", "bfloat16", "--out", str(other), "--compare-to", str(own)]) == 0
    rows = pd.read_csv(other / "validate.csv").set_index("method")
    assert 0.0 <= rows.loc["none", "mask_iou_vs_compare"] <= 1.0 and rows.loc["none",
                                                                              "logit_diff_vs_compare"] > 0
    assert "mask_iou_vs_compare" in (other / "report.md").read_text()
    capsys.readouterr()
    assert main([*base, "--out", str(tmp_path / "x"), "--compare-to", str(tmp_path / "nothing")]) == 2
    assert "--compare-to" in capsys.readouterr().err and not (tmp_path / "x").exists()
    assert main([*base, "--max-sentences", "1", "--out", str(tmp_path / "y"), "--compare-to", str(own)]) == 2
    assert "another image or sentences" in capsys.readouterr().err and not (tmp_path / "y").exists()


def test_report_tables_are_short_and_cuda_free_on_cpu(tiny_run):
    """report.md's tables show at most 10 columns (every column is in the csv files), no CUDA time on a
    CPU."""
    from tests.md_tables import markdown_tables

    out, _, _ = tiny_run
    tables = markdown_tables((out / "report.md").read_text())
    assert len(tables) == 3 and all(1 < len(header) <= 10 for header, _ in tables)
    assert not any("cuda" in col for header, _ in tables for col in header)
    assert "cuda_time_reading_speedup" in pd.read_csv(out / "ratios.csv")  # the data keep every column


def test_report_views_hold_at_most_10_columns_and_cuda_times_only_on_cuda():
    from analysis.validate.report import CUDA_COLUMNS, PAPER_COLUMNS, RATIO_COLUMNS, RUN_COLUMNS, short_view

    for cols in (RATIO_COLUMNS, PAPER_COLUMNS, RUN_COLUMNS):
        assert len(cols) <= 10
        frame = pd.DataFrame([[1.0] * len(cols)], columns=cols)
        assert list(short_view(frame, cols, cuda=True).columns) == cols
        assert not set(short_view(frame, cols, cuda=False).columns) & set(CUDA_COLUMNS)


BAD_BUDGETS = ["0", "all", "576,x"]


@pytest.fixture(scope="module")
def budget_refusals(tmp_path_factory) -> dict[str, tuple[dict, object]]:
    """Each of :data:`BAD_BUDGETS` refused in one fresh interpreter (one after another): what it gave, and
    its ``--out``."""
    from tests.analysis.test_efficiency import parse_refusals

    dirs = {b: tmp_path_factory.mktemp("refused") for b in BAD_BUDGETS}
    got = parse_refusals([["validate", "--refer-dir", str(dirs[b]), "--budgets", b, "--out",
                           str(dirs[b] / "out")] for b in BAD_BUDGETS])
    return {b: (g, dirs[b] / "out") for b, g in zip(BAD_BUDGETS, got, strict=True)}


@pytest.mark.parametrize("budgets", BAD_BUDGETS)
def test_bad_budget_is_refused_at_parsing_before_torch(budget_refusals, budgets):
    """``validate --budgets 0 / all``: exit 2 at parsing, one line naming --budgets, before torch loads."""
    got, out = budget_refusals[budgets]
    assert got["rc"] == 2 and not got["torch"] and "argument --budgets" in got["err"], got
    assert not out.exists()


def test_plan_runs_carries_budgets_and_skips_above_the_images_n(coco128):
    """``plan_runs``: (method, Budget) runs, the baseline at ``Budget.ALL`` where N depends on the image (at N
    on a fixed grid), a budget above this image's N skipped and reported as its column."""
    from types import SimpleNamespace

    from analysis.validate.inputs import plan_runs
    from analysis.validate.options import ValidateArgs, check_inputs
    from litelvlm.budget import Budget

    per_image = SimpleNamespace(num_visual_tokens=None, abilities=SimpleNamespace(budget_unit="visual"))
    runs, skipped = plan_runs(["none", "litelvlm"], Budget.parse_list("64,8,1000"), per_image, 391)
    assert runs == [("none", Budget.ALL), ("litelvlm", Budget(64)),
                    ("litelvlm", Budget(8))] and skipped == [1000]
    grid = SimpleNamespace(num_visual_tokens=576, abilities=SimpleNamespace(budget_unit="visual"))
    assert plan_runs(["none", "fastv"], [Budget(64)], grid, 576) == (
        [("none", Budget(576)), ("fastv", Budget(64))], [])
    # the family's default, as Budgets (a REFER folder: its layout is checked before anything loads)
    a = check_inputs(ValidateArgs(refer_dir=str(coco128), out="x"))
    assert a.budgets == Budget.parse_list("576,192,128,64")   # the paper's
    assert ValidateArgs(refer_dir=".", out="x", budgets=["576,64", 8]).budgets == Budget.parse_list(
        "576,64,8")


def test_runs_reach_the_pipeline_as_budgets(tiny_run):
    """Every ``ground`` call of a validate run gets a Budget (the reference and the baseline at N, each method
    at its K); the table keys hold the counted K."""
    from litelvlm.budget import Budget

    out, _, seen = tiny_run
    assert seen and all(isinstance(b, Budget) for _, b in seen), seen
    # the reference run keeps every token (Budget.ALL), the planned baseline run K = N = 576
    runs = [(m, k) for m in sorted(METHODS.split(",")) for k in (576, 64)]
    assert set(seen) == {("none", Budget.ALL), ("none", Budget(576))} | {(m, Budget(k)) for m, k in runs}
    rows = pd.read_parquet(out / "validate.parquet")
    assert list(zip(rows["method"], rows["budget"])) == [("none", 576), *runs]


def test_a_vision_tower_method_is_timed_by_its_tower_stage(coco128, tmp_path):
    """``validate``'s default runs every method GLaMM offers, FlowCut (the vision-tower stage) included: its
    selection time is the tower stage's own run, not a CLIP-side selection (which refuses it)."""
    out = tmp_path / "out"
    assert main(["validate", "--refer-dir", str(coco128), "--out", str(out), "--threads", "1",
                 "--budgets", "64", "--methods", "flowcut", "--no-figures"]) == 0
    row = pd.read_parquet(out / "validate.parquet").set_index("method").loc["flowcut"]
    assert math.isfinite(row["selection_ms"]) and row["selection_ms"] > 0
    assert row["visual_tokens_kept"] == 64


def _renumbered_to_0(refer):
    """The one-image REFER folder ``refer`` with its image numbered 0 (COCO's ids start at 1; a folder of
    one's own may not)."""
    import json
    import pickle

    from litelvlm.toy.refer_layout import image_file_name

    inst = json.loads((refer / "instances.json").read_text())
    (old,) = [im["id"] for im in inst["images"]]
    for item in (*inst["images"], *inst["annotations"]):
        item["image_id" if "image_id" in item else "id"] = 0
    inst["images"][0]["file_name"] = image_file_name(0)
    (refer / "instances.json").write_text(json.dumps(inst))
    refs = pickle.loads((refer / "refs(unc).p").read_bytes())
    for ref in refs:
        ref["image_id"] = 0
    (refer / "refs(unc).p").write_bytes(pickle.dumps(refs))
    (refer / "images" / image_file_name(old)).rename(refer / "images" / image_file_name(0))
    return refer


def test_an_image_numbered_0_is_validated(tmp_path):
    from litelvlm.toy.refer_layout import write_refer

    refer = _renumbered_to_0(write_refer(tmp_path / "refer", 1, size=64))
    out = tmp_path / "out"
    assert main(["validate", "--refer-dir", str(refer), "--image-id", "0", "--out", str(out), "--methods",
                 "litelvlm", "--budgets", "16", "--threads", "1", "--no-figures"]) == 0
    assert pd.read_parquet(out / "validate.parquet")["method"].tolist() == ["none", "litelvlm"]
