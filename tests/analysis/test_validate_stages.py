"""``litelvlm validate``'s time by stage: ``stages.csv`` (one row per run and stage, ``ms`` and ``share`` of
the whole call; with a matrix-product rate each stage's FLOPs, weight bytes and roofline too), ``stages.png``
(titled with how it was timed, saying random weights), the lines on screen and in report.md (where the time
goes; the whole call's speed-up beside the prefill's), and both files committed with the run's other results
only (a run that fails writes neither)."""

from __future__ import annotations

import contextlib
import io
import json
import re
from pathlib import Path

import pandas as pd
import pytest
import torch

from analysis.common.measures.steadiness import unsteady_lines
from analysis.validate import compute
from analysis.validate.measure import timed_ms
from analysis.validate.report import ROW_COLUMNS
from analysis.validate.rounds import median_row
from litelvlm.cli import main
from litelvlm.cost.stages import COLUMNS
from tests.fixtures.collector import collections_during
from tests.fixtures.kept_runs import keep, kept_run
from tests.fixtures.spies import forwards_seen


def _validate(coco128, folder: Path, *extra: str) -> tuple[Path, str]:
    """(the run folder, the screen) of validate's LiteLVLM@64 on the tiny GLaMM, one thread, and ``extra``."""
    out = folder / "out"
    screen = io.StringIO()
    with contextlib.redirect_stdout(screen):
        assert main(["validate", "--refer-dir", str(coco128), "--out", str(out), "--methods", "litelvlm",
                     "--budgets", "64", "--threads", "1", *extra]) == 0
    return out, screen.getvalue()


def _make_stage_run(coco128, folder: Path) -> None:
    """:func:`_validate`'s run, kept with the inputs made so far (``prepare_image`` calls) at each timing by
    stage (pass-through spies)."""
    import analysis.validate.compute as vc
    from litelvlm.glamm.pipeline import GlammPipeline

    made, at_timing = [0], []
    real_prepare, real_timer = GlammPipeline.prepare_image, vc.time_stages

    def prepare(self, *args, **kwargs):
        made[0] += 1
        return real_prepare(self, *args, **kwargs)

    def timer(pipe, fn):
        at_timing.append(made[0])
        return real_timer(pipe, fn)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(GlammPipeline, "prepare_image", prepare)
        mp.setattr(vc, "time_stages", timer)
        keep(folder, _validate(coco128, folder)[1], at_timing=at_timing)


@pytest.fixture(scope="module")
def stage_run_spied(coco128, session_folders):
    """:func:`_validate`'s run (folder, screen), and the inputs made so far at each timing by stage, run once
    per test session (:func:`_make_stage_run`)."""
    out, screen, noted = kept_run(session_folders, "validate-stages", lambda t: _make_stage_run(coco128, t))
    return out, screen, noted["at_timing"]


@pytest.fixture(scope="module")
def stage_run(stage_run_spied):
    out, screen, _ = stage_run_spied
    return out, screen


def test_stages_csv_has_one_row_per_run_and_stage_adding_up_to_the_call(stage_run):
    out, _ = stage_run
    stages = pd.read_csv(out / "stages.csv")
    assert list(stages.columns) == ["method", "budget", "stage", "ms", "share"]
    assert list(dict.fromkeys(zip(stages["method"], stages["budget"]))) == [("none", 576), ("litelvlm", 64)]
    for _, run in stages.groupby(["method", "budget"], sort=False):
        assert list(run["stage"]) == list(COLUMNS)
        ms = run.set_index("stage")["ms"]
        assert (ms >= 0).all() and ms["total"] > 0 and ms["decode"] == 0  # teacher-forced: nothing decoded
        assert ms.drop("total").sum() == pytest.approx(ms["total"])   # other = total - the named stages
        assert run.set_index("stage")["share"]["total"] == 1.0
        assert (ms[["vision", "prefill", "mask"]] > 0).all()  # the whole call: the image's forwards too
    lite = stages[stages["method"] == "litelvlm"].set_index("stage")["ms"]
    assert lite["selection"] > 0  # LiteLVLM's CLIP-side selection; none selects nothing
    assert stages[stages["method"] == "none"].set_index("stage")["ms"]["selection"] == 0
    # the table's medians are validate.csv's stage columns
    rows = pd.read_csv(out / "validate.csv").set_index(["method", "budget"])
    assert rows.loc[("litelvlm", 64), "stage_total_ms"] == pytest.approx(lite["total"])


def test_the_figure_and_the_screen_line_say_how_the_stages_were_timed(stage_run):
    from analysis.common.presentation.stage_plots import plot_stages

    out, screen = stage_run
    assert (out / "stages.png").stat().st_size > 0
    config = json.loads((out / "config.json").read_text())
    assert config["stage_timing"] == {"attn": "eager", "prefill": "eager", "encoders": "eager",
                                      "dtype": "float32", "device": config["stage_timing"]["device"]}
    fig = plot_stages(pd.read_csv(out / "stages.csv"), config, config["model"])
    texts = [t.get_text() for t in fig.findobj(lambda a: hasattr(a, "get_text"))]
    assert any("RANDOM WEIGHTS" in t for t in texts)
    title = fig._suptitle.get_text()
    assert "LLM attention: eager (explicit" in title and "prefill: eager (each decoder layer" in title
    assert "float32" in title
    bars = [ax for ax in fig.axes if ax.axison]
    assert [t.get_text() for t in bars[0].get_yticklabels()] == ["none", "litelvlm@64"]
    line = next(line for line in screen.splitlines() if line.startswith("stages (none): "))
    assert "(litelvlm@64): " in line and "prefill" in line and "%" in line
    # the whole call beside the prefill, without rooflines (no rate on a CPU by default)
    speed = next(line for line in screen.splitlines() if line.startswith("litelvlm@64: prefill "))
    assert re.fullmatch(r"litelvlm@64: prefill \d+\.\d\dx, whole call \d+\.\d\dx "
                        r"\(sequence \d+ -> \d+ tokens\)", speed)
    assert speed in (out / "report.md").read_text()
    assert "stage_total_roofline_ms" not in pd.read_csv(out / "validate.csv")


@pytest.fixture(scope="module")
def roofline_run(coco128, session_folders):
    """A run with a matrix-product rate (``--matmul-tflops 0.05``: this CPU's order of magnitude), without
    figures (``--no-figures``), run once per test session (the xdist workers share it)."""
    def make(folder: Path) -> None:
        keep(folder, _validate(coco128, folder, "--matmul-tflops", "0.05", "--no-figures")[1])

    return kept_run(session_folders, "validate-roofline-run", make)[:2]


def test_no_figures_writes_the_stage_tables_without_their_figures(roofline_run):
    """``--no-figures``: stages.csv and amdahl.csv, neither PNG; the run's identity (config.json) does not
    record it."""
    out, _ = roofline_run
    assert (out / "stages.csv").exists() and (out / "amdahl.csv").exists()
    assert not (out / "stages.png").exists() and not (out / "amdahl.png").exists()
    assert "figures" not in json.loads((out / "config.json").read_text())


def test_with_a_rate_every_stage_gets_its_roofline_and_the_headline_its_ratios(roofline_run):
    out, screen = roofline_run
    stages = pd.read_csv(out / "stages.csv")
    assert list(stages.columns) == ["method", "budget", "stage", "ms", "share", "flops", "weight_bytes",
                                    "roofline_ms", "over_roofline"]
    for _, run in stages.groupby(["method", "budget"], sort=False):
        run = run.set_index("stage")
        assert run.loc["total", "roofline_ms"] == pytest.approx(run["roofline_ms"].drop("total").sum())
        assert run.loc["total", "flops"] == run["flops"].drop("total").sum()
        assert (run.loc[["vision", "prefill", "mask", "total"], "roofline_ms"] > 0).all()
        timed = run[run["roofline_ms"] > 0]
        ratio = (timed["ms"] / timed["roofline_ms"]).to_numpy()
        assert timed["over_roofline"].to_numpy() == pytest.approx(ratio)
        assert run[run["roofline_ms"] == 0]["over_roofline"].isna().all()
    prefill = stages[stages["stage"] == "prefill"].set_index("method")["flops"]
    assert prefill["litelvlm"] < prefill["none"]   # 64 of 576 visual tokens
    rows = pd.read_csv(out / "validate.csv").set_index("method")
    assert rows.loc["litelvlm", "stage_total_roofline_ms"] == pytest.approx(
        stages.set_index(["method", "stage"]).loc[("litelvlm", "total"), "roofline_ms"])
    speed = next(line for line in screen.splitlines() if line.startswith("litelvlm@64: prefill "))
    assert re.fullmatch(r"litelvlm@64: prefill [\d.]+x \(roofline [\d.]+x\), whole call [\d.]+x "
                        r"\(roofline [\d.]+x; call at [\d.]+x its roofline\) "
                        r"\(sequence \d+ -> \d+ tokens\)", speed)
    assert speed in (out / "report.md").read_text()


def test_stage_costs_count_every_stage_without_a_rate(tiny_glamm, coco128):
    """``--stage-costs`` without a rate (a CPU's default): each stage's FLOPs and weight bytes of one counted
    call per row, no roofline (that needs the rate), and ``stages.csv`` shows them."""
    from analysis.common.presentation.stage_plots import stages_frame
    from analysis.validate.call_roofline import add_stage_rooflines
    from litelvlm.data.refer import load_refer

    pipe, rec = tiny_glamm, load_refer(coco128, None, split="all")[0]
    image = rec.image()
    rows = pd.DataFrame({"method": ["litelvlm"], "budget": [64], **{f"stage_{s}_ms": [1.0] for s in COLUMNS}})

    def call(method: str, k: int):
        return pipe.ground(pipe.with_sentences(pipe.prepare_image(image), [rec.sentence]), method, k)

    assert add_stage_rooflines(rows, pipe, None, call) is rows   # not asked: nothing counted
    counted = add_stage_rooflines(rows, pipe, None, call, count=True)
    assert not any(c.endswith("roofline_ms") for c in counted.columns)
    row = counted.iloc[0]
    assert row["stage_prefill_flops"] > 0 and row["stage_mask_weight_bytes"] > 0
    assert row["stage_total_flops"] == sum(row[f"stage_{s}_flops"] for s in COLUMNS if s != "total")
    stages = stages_frame(counted)
    assert list(stages.columns) == ["method", "budget", "stage", "ms", "share", "flops", "weight_bytes"]


def test_a_failed_run_leaves_no_stage_files(coco128, tmp_path, monkeypatch):
    """stages.csv and stages.png go through the run's transaction: written before the run fails, they never
    reach the folder."""
    import analysis.validate.report as report

    def fail(frame):
        raise RuntimeError("a failure after the stage files were written")

    monkeypatch.setattr(report, "screen_line", fail)
    out = tmp_path / "out"
    with pytest.raises(RuntimeError, match="after the stage files"):
        main(["validate", "--refer-dir", str(coco128), "--out", str(out), "--methods", "litelvlm",
              "--budgets", "64", "--threads", "1"])
    assert (out / "parts").is_dir()  # the runs were measured (kept as they finished)
    assert not (out / "stages.csv").exists() and not (out / "stages.png").exists()


@pytest.mark.gpu
@pytest.mark.skipif(not __import__("torch").cuda.is_available(), reason="needs a CUDA device")
def test_stages_on_cuda_under_the_default_prefill(coco128, tmp_path):
    """On CUDA, the default prefill path (captured where it is the default) calls the timer's layer hooks
    around its segments: the prefill is seen, and config.json says which path ran."""
    out = tmp_path / "out"
    assert main(["validate", "--refer-dir", str(coco128), "--out", str(out), "--device", "cuda", "--methods",
                 "litelvlm", "--budgets", "64"]) == 0
    stages = pd.read_csv(out / "stages.csv")
    for _, run in stages.groupby(["method", "budget"]):
        ms = run.set_index("stage")["ms"]
        assert ms["prefill"] > 0 and ms.drop("total").sum() == pytest.approx(ms["total"], rel=1e-4)
    timing = json.loads((out / "config.json").read_text())["stage_timing"]
    assert timing["prefill"] in ("eager", "captured") and not timing["device"].startswith("CPU")


def test_where_the_savings_land_against_amdahls_bound(stage_run):
    """``amdahl.csv`` and ``amdahl.png`` beside the stages, and the screen's lines: none's LLM share, the
    bound on a method that only shortens the LLM, LiteLVLM's measured speed-up beside it."""
    out, screen = stage_run
    table = pd.read_csv(out / "amdahl.csv")
    stages = pd.read_csv(out / "stages.csv").set_index(["method", "stage"])["ms"]
    p = (stages["none", "prefill"] + stages["none", "decode"]) / stages["none", "total"]
    row = table.set_index("method").loc["litelvlm"]
    assert row["llm_share_of_base"] == pytest.approx(p)
    assert row["bound_llm_only"] == pytest.approx(1 / (1 - p))
    assert row["speedup"] == pytest.approx(stages["none", "total"] / stages["litelvlm", "total"])
    assert row["saved_selection_ms"] < 0   # LiteLVLM's CLIP-side selection costs time outside the LLM
    assert (out / "amdahl.png").stat().st_size > 0
    lines = screen.splitlines()
    head = next(i for i, line in enumerate(lines) if line.startswith("Amdahl (this project's reading): "))
    assert f"at most {1 / (1 - p):.2f}x faster" in lines[head]
    assert lines[head + 1].startswith("  litelvlm@64: ") and "if only its LLM" in lines[head + 1]
    assert re.search(r"\(sequence \d+ -> \d+ tokens\)$", lines[head + 1]), lines[head + 1]


def test_the_first_timed_whole_call_is_not_the_first_whole_call(stage_run_spied):
    """The whole call timed by stage makes the input again (the image's forwards); the first such call pays
    what a first call pays (a CUDA graph's capture of the encoders, first kernels), so an untimed one runs
    first: ``none``, measured first, is not charged for it (on the GPU check it was, by up to 92 ms)."""
    at_first_timing = stage_run_spied[2]
    # the run's input (1), then an untimed whole call on a fresh input (2), before the first timing
    assert at_first_timing and at_first_timing[0] >= 2, at_first_timing


def test_the_run_records_its_captured_encoders_and_says_which_calls_ran_eagerly(coco128, tmp_path, capsys,
                                                                               monkeypatch):
    """Under captured encoders (dynamo's eager backend on the CPU) config.json's ``stage_timing`` names the
    encoders captured and, per reason, the calls that ran eagerly over the whole run (here CLIP's text tower,
    made to refuse its capture), and the screen says so once per reason."""
    from litelvlm.lvlm import encoders

    why = encoders.CapturedEncoder._why_eager
    monkeypatch.setattr(encoders.CapturedEncoder, "_why_eager", lambda self, a, k: "a test's refusal" if type(
        self.module).__name__ == "CLIPTextModel" else why(self, a, k))
    out, _ = _validate(coco128, tmp_path, "--encoders", "compile-eager", "--no-figures")
    timing = json.loads((out / "config.json").read_text())["stage_timing"]
    assert timing["encoders_captured"] == ["CLIPTextModel", "CLIPVisionModel", "SamVisionEncoder"]
    calls = timing["encoders_eager"]["CLIPTextModel: a test's refusal"]
    assert list(timing["encoders_eager"]) == ["CLIPTextModel: a test's refusal"] and calls >= 3
    err = capsys.readouterr().err
    assert (f"validate: --encoders compile-eager: encoder calls ran eagerly: CLIPTextModel: a test's refusal "
            f"({calls} calls)") in err


def test_eager_encoders_record_nothing_more(stage_run):
    out, _ = stage_run
    timing = json.loads((out / "config.json").read_text())["stage_timing"]
    assert timing["encoders"] == "eager"
    assert "encoders_captured" not in timing and "encoders_eager" not in timing


def test_a_method_pruning_inside_the_tower_is_charged_as_in_eval_grounding(coco128, tmp_path, monkeypatch):
    """One accounting everywhere: IPCV pruning after block 2 of UniPixel's tiny tower is charged its own tower
    run in place of the preparation's full one in ``validate``'s stages too (the leaderboard's rule,
    :mod:`analysis.common.measures.stage_costs`), so its vision stage counts fewer FLOPs than ``none``'s; its
    timed call is charged less the image's forwards made again (the preparation's run as the call made it:
    captured where the encoders are), not less an eager full run of the tower."""
    seen = forwards_seen(monkeypatch, compute, "less_tower_ms")
    out = tmp_path / "run"
    assert main(["validate", "--refer-dir", str(coco128), "--out", str(out), "--model",
                 "unipixel-tiny-random:0", "--methods", "none,ipcv", "--budgets", "8", "--ipcv-layer", "2",
                 "--ipcv-as-layers", "1", "--stage-costs", "--threads", "1", "--no-figures"]) == 0
    stages = pd.read_csv(out / "stages.csv")
    vision = stages[stages["stage"] == "vision"].set_index("method")
    assert vision.loc["ipcv", "flops"] < vision.loc["none", "flops"]
    assert vision.loc["ipcv", "ms"] > 0
    assert seen == ["UniPixelInput"]   # the image's forwards (a prepared input), not a tower run's tokens


def test_validates_own_timings_pay_no_collector_pause():
    """``timed_ms`` (the image's preparation, a method's selection) times its call with the collector paused,
    as the stage timer does; the collections due run after it."""
    inside, after = collections_during(lambda allocate: timed_ms(allocate, torch.device("cpu")))
    assert inside == 0
    assert after > 0


def test_a_run_whose_whole_call_varied_twofold_across_rounds_is_named_unsteady():
    """``stage_total_ms_rounds`` keeps each round's whole call; a run whose slowest round took twice its
    fastest or more is named, with its rounds, in report.md's whole-call section and on the screen."""
    def call(total: float) -> dict:
        return {**dict.fromkeys(ROW_COLUMNS, 0), "method": "ipcv", "budget": 192, "stage_total_ms": total,
                "prefill_ms": 1.0, "paper_prefill_ms": 1.0, "peak_rss_gib": 0.0, "activation_mb": 0.0,
                "llm_activation_mb": 0.0, "max_logit_diff_none": 0.0, "text_ids_equal": True,
                "masks_equal_none": True}

    row = median_row([call(407.0), call(112.7), call(45.2)])
    assert row["stage_total_ms_rounds"] == "407.0 112.7 45.2"
    steady = {**median_row([call(50.0), call(60.0), call(55.0)]), "method": "none", "budget": 391}
    lines = unsteady_lines([steady, row])
    assert len(lines) == 1
    assert "ipcv@192" in lines[0] and "45.2-407" in lines[0] and "9.0x" in lines[0]
    assert unsteady_lines([steady]) == []
    # one round, or rounds kept before the column existed: nothing to judge
    assert unsteady_lines([{**steady, "stage_total_ms_rounds": "50.0"}]) == []
    assert unsteady_lines([{"method": "none", "budget": 391}]) == []
