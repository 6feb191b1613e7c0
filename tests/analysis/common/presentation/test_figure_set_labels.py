"""No label is typed by hand, null results are named, timing caveats travel: figures drawn from run folders of
several dtypes and families (written here: a config.json and its tables, no model) are read back from their
matplotlib objects (legend texts, titles, axis labels, figure texts), never from pixels."""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from analysis.common.presentation.caveats import NOTE_GID, TIMING_KEY, null_results, run_caveats  # noqa: E402
from analysis.common.presentation.figure_set import save_figures  # noqa: E402
from tests.fixtures.png_only import png_only  # noqa: E402

BUSY = ("the machine was busy while timing (1-minute load 7.0 above 1 thread(s)): other work shared the "
        "cores, so times and their ratios are unreliable; rerun on a quiet machine")


def texts(fig) -> list[str]:
    """Every text a figure shows: titles, axis labels, tick labels, legend entries and titles, figure
    texts."""
    found = [t.get_text() for t in fig.texts]
    for ax in fig.axes:
        found += [ax.get_title(), ax.get_title("left"), ax.get_title("right"), ax.get_xlabel(),
                  ax.get_ylabel()]
        legend = ax.get_legend()
        if legend is not None:
            found += [t.get_text() for t in legend.get_texts()] + [legend.get_title().get_text()]
    return [t for t in found if t]


def _write(folder: Path, config: dict, **tables: pd.DataFrame) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps(config))
    for name, df in tables.items():
        df.to_csv(folder / f"{name}.csv", index=False)
    return folder


def _validate_run(folder: Path, dtype: str, quantize: str = "none", busy: str | None = None,
                  device: str = "cpu") -> Path:
    rows = [("none", 576), ("litelvlm", 64), ("litelvlm", 32)]
    mem = pd.DataFrame([{"method": m, "budget": b, "quantize": quantize, "peak_mb": 100.0 + b / 10,
                         "llm_activation_mb": b / 10} for m, b in rows])
    val = pd.DataFrame(
        [{"method": m, "budget": b, "paper_prefill_ms": b / 5, "mask_iou_vs_compare": 1 - b / 1000}
                        for m, b in rows])
    config = {"model": "tiny-random:0", "device": device, "quantize": quantize, "model_dtype": dtype,
              "identity":
              {"study": "validate", "family": "glamm", "model": "tiny-random:0", "weights": "random"},
              **({TIMING_KEY: busy} if busy else {})}
    return _write(folder, config, memory=mem, validate=val)


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_quantization_legends_name_the_runs_recorded_dtype(tmp_path, dtype):
    from analysis.quantization.figure_set import draw_quantization, read_quantization_runs

    figs = draw_quantization(read_quantization_runs([_validate_run(tmp_path / "none", dtype)]))
    assert {"memory_cpu", "activation_cpu", "masks_cpu"} <= set(figs)
    for name, fig in figs.items():
        shown = " | ".join(texts(fig))
        assert "bf16" not in shown, (name, shown)
        assert f"{dtype} (not quantized)" in shown, (name, shown)
    assert figs["masks_cpu"].axes[0].get_ylabel() == f"mask IoU with {dtype}, all tokens"


def _video_summary(frame: int, llm: int, zero: bool = False) -> pd.DataFrame:
    rows = [("none", 576, frame, llm, 0.5), ("litelvlm", 196, round(frame * 196 / 576), llm // 3, 0.4),
            ("fastv", 81, None, llm // 7, 0.3)]
    return pd.DataFrame([{"method": m, "budget": b, "context_tokens": c, "llm_visual_tokens": t,
                          "J": 0.0 if zero else v, "F": 0.0 if zero else v, "J&F": 0.0 if zero else v}
                         for m, b, c, t, v in rows])


@pytest.mark.parametrize(("family", "frame"), [("sa2va", 36), ("videoglamm", 144), ("unipixel", 64)])
def test_video_figures_state_the_runs_own_frame_tokens(family, frame):
    from analysis.video import plots
    from analysis.video.figure_set import video_labels

    fig, ax = plots.plot_jf_vs_budget(_video_summary(frame, 4 * frame), "J&F",
                                      labels=video_labels({"family": family}))
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend[-1] == f"none: all tokens ({frame} a frame)"
    assert not any("all 576" in t for t in texts(fig))
    assert f"this run's frames have {frame} tokens" in ax.get_xlabel().replace("\n", " ")


def test_null_results_name_a_zero_metric_rows_equal_to_none_and_unchanged_llm_tokens():
    zero = null_results(_video_summary(36, 144, zero=True), ("J", "F", "J&F"), ["sa2va-tiny-random:0"])
    assert len(zero) == 1 and "every J, F, J&F is 0 in every row" in zero[0] and "random weights" in zero[0]
    same = pd.DataFrame(
        {"method": ["none", "litelvlm", "fastv"], "budget": [0, 64, 16], "ciou": [0.2, 0.2, 0.2],
                         "giou": [0.1, 0.1, 0.1]})
    lines = null_results(same, ("ciou", "giou"), ["unipixel-tiny-random:5"])
    assert lines == ["null result: every pruned row equals `none` exactly (ciou, giou); likely cause: these "
                     "random weights give masks that do not depend on the tokens kept"]
    near = same.assign(ciou=[0.2, 0.2, 0.20001])
    assert null_results(near, ("ciou", "giou"))[0].startswith(
        "null result: every pruned row equals `none` to the 4 digits shown (ciou, giou) (exactly: "
        "litelvlm@64)")
    one = same.assign(ciou=[0.2, 0.3, 0.2])
    assert null_results(one, ("ciou", "giou"))[0].startswith("null result: fastv@16 equal `none` exactly")
    tokens = _video_summary(144, 3328).assign(llm_visual_tokens=3328)
    lines = null_results(tokens, ("J", "F", "J&F"), ["videoglamm-tiny-random:0"])
    assert [x for x in lines if "changes no LLM token" in x][0].startswith(
        "null result: litelvlm's pruning changes no LLM token (llm_visual_tokens is 3,328 in every row")
    # a result that means something: no line
    assert null_results(_video_summary(36, 144), ("J", "F", "J&F")) == []


def _saved_notes(fig) -> list[str]:
    return [t.get_text().replace("\n", " ") for t in fig.texts if t.get_gid() == NOTE_GID]


@pytest.mark.parametrize("family", ["sa2va", pytest.param("videoglamm", marks=pytest.mark.slow)])
def test_a_null_video_run_says_so_on_its_figures(tmp_path, family, monkeypatch):
    from analysis.video.figure_set import FIGURE_SET, draw_video, read_video

    model = f"{family}-tiny-random:0"
    run = _write(tmp_path / "run", {"model": model, "family": family},
                 summary=_video_summary(36, 144, zero=True))
    tables = read_video(run)
    notes = FIGURE_SET.run_notes(tables, [model], [run])
    assert len(notes["notes"]) == 1 and notes["notes"][0].startswith("null result: every J, F, J&F is 0")
    figs = draw_video(tables)
    png_only(monkeypatch)   # the figure's notes are checked, not its files
    assert save_figures({"jf": figs["jf"]}, tmp_path / "figs", "video", [model], **notes)  # one file: light
    assert _saved_notes(figs["jf"]) == notes["notes"]


def test_a_busy_runs_caveat_is_drawn_on_its_timed_figures(tmp_path, monkeypatch):
    from analysis.quantization.figure_set import FIGURE_SET, draw_quantization, read_quantization_runs

    run = _validate_run(tmp_path / "none", "float32", busy=BUSY, device="cuda:0")
    assert run_caveats(tmp_path) == [f"TIMES UNRELIABLE: {BUSY}"]
    tables = read_quantization_runs([run])
    notes = FIGURE_SET.run_notes(tables, ["tiny-random:0"], [run])
    assert notes["timing"] == [f"TIMES UNRELIABLE: {BUSY}"] and not notes["notes"]
    figs = draw_quantization(tables)
    figs = {k: figs[k] for k in ("prefill_cuda:0", "memory_cuda:0")}
    png_only(monkeypatch)   # the figures' notes are checked, not their files
    save_figures(figs, tmp_path / "figs", "quantization", ["tiny-random:0"], **notes)
    assert _saved_notes(figs["prefill_cuda:0"]) == notes["timing"]  # the time a busy machine measured says so
    assert _saved_notes(figs["memory_cuda:0"]) == []  # memory, which no load changes, keeps its bytes


def test_identical_figures_are_written_once_and_said(tmp_path, capsys):
    import matplotlib.pyplot as plt

    def draw(title):
        fig, ax = plt.subplots(figsize=(1, 1), dpi=20)
        ax.plot([1, 2], [3, 4])
        ax.set_title(title)
        return fig

    paths = save_figures({"flops_eager": draw("FLOPs"), "flops_sdpa": draw("FLOPs"), "other": draw("other")},
                         tmp_path, "efficiency")
    assert sorted(p.name for p in paths) == ["efficiency_flops_eager.pdf", "efficiency_flops_eager.png",
                                            "efficiency_other.pdf", "efficiency_other.png"]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p in paths)
    assert "efficiency_flops_sdpa is identical to efficiency_flops_eager" in capsys.readouterr().out


# 8 CPU-seconds; test_identical_figures_are_written_once_and_said is the default representative
@pytest.mark.slow
def test_the_flops_of_eager_and_sdpa_are_drawn_once(tmp_path, capsys):
    from litelvlm.cli import main

    runs = tmp_path / "runs"
    assert main(
        ["efficiency", "--arch", "tiny", "--flops-only", "--methods", "none", "litelvlm", "--budgets", "576",
                 "64", "--attn", "eager", "sdpa", "--no-figures", "--out", str(runs / "efficiency")]) == 0
    assert main(
        ["figures", "--results", str(runs), "--figure-set", "efficiency", "--out", str(tmp_path / "f")]) == 0
    names = sorted(p.name for p in (tmp_path / "f").glob("*.png"))
    assert [n for n in names if "_flops_" in n] == ["efficiency_glamm-tiny_flops_eager.png"]
    assert "memory_sdpa" in " ".join(names)  # memory depends on the kernel: both drawn
    assert ("figures: efficiency_glamm-tiny_flops_sdpa is identical to efficiency_glamm-tiny_flops_eager: "
            "written once") in capsys.readouterr().out
