"""Every registered figure set, drawn the way ``litelvlm figures --results DIR`` draws it (the tree route:
each run's ``config.json`` names its study, family and model) from run folders of different dtypes, families
and weights written here (a config.json and small tables in the layout each study writes, no model), read back
from its matplotlib texts: the texts name the run's own family, model and weights; none names a dtype, family
or token count the run does not have; a run recorded on a busy machine says so under every figure of measured
times and in its text tables."""

from __future__ import annotations

import json
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from matplotlib.text import Text  # noqa: E402

from analysis.common.presentation.caveats import TIMING_KEY  # noqa: E402
from analysis.common.presentation.figure_set import runs_name  # noqa: E402
from analysis.figures import registry  # noqa: E402

ROOT = Path(__file__).resolve().parents[3]
RESULTS = ROOT / "results"
BUSY = "the machine was busy while timing (1-minute load 7.0 above 1 thread(s)); rerun on a quiet machine"
#: how a text names a dtype: the words a figure would use
DTYPE_WORDS = {"float32": ("float32", "fp32"), "bfloat16": ("bfloat16", "bf16"),
               "float16": ("float16", "fp16")}
#: how a text names a model family
FAMILY_WORDS = {"glamm": "GLaMM", "unipixel": "UniPixel", "sa2va": "Sa2VA", "videoglamm": "VideoGLaMM"}


@dataclass
class Case:
    """One run folder of a figure set and what its figures must (and must not) say."""

    figure_set: str
    variant: str
    build: object  # build(folder) -> None: writes config.json and the tables
    says: tuple[str, ...] = ()  # texts every figure shows (besides the run's family/model label)
    dtype: str | None = None  # the run's dtype: no figure names another
    model_family: str | None = None  # the run's model family: no figure names another
    not_tokens: tuple[str, ...] = ()  # token counts the run does not have
    weights: str = "random"  # the run's kind of weights, which every figure states
    busy: bool = False
    timed: tuple[str, ...] = ()  # figures (name starts) that show measured times
    slow: bool = False


def all_texts(fig) -> list[str]:
    """Every text of ``fig`` (titles, axis and tick labels, legends, figure texts), after a layout."""
    fig.draw_without_rendering()
    return [t.get_text() for t in fig.findobj(Text) if t.get_visible() and t.get_text()]


def _config(folder: Path, study: str, model: str, fam: str, weights: str, **fields) -> None:
    cfg = {**json.loads((folder / "config.json").read_text()), **fields} if (
        folder / "config.json").exists() else dict(fields)
    cfg.update(model=model, identity={"study": study, "family": fam, "model": model, "weights": weights})
    (folder / "config.json").write_text(json.dumps(cfg))


def _copy(src: str, folder: Path) -> None:
    shutil.copytree(RESULTS / src, folder)
    for png in folder.glob("*.png"):
        png.unlink()


# --- the run folders, one builder per study layout ----------------------------------------------------------

def efficiency_run(src: str, model: str, family: str, dtype: str, busy: bool = False):
    def build(folder: Path) -> None:
        _copy(src, folder)
        for name in ("efficiency.csv", "comparison.csv"):
            if (folder / name).exists():
                df = pd.read_csv(folder / name)
                for col in ("dtype", "meta_dtype"):
                    if col in df:
                        df[col] = dtype
                df.to_csv(folder / name, index=False)
        _config(folder, "efficiency", model, family, "random", dtype=dtype,
                **({TIMING_KEY: BUSY} if busy else {}))
    return build


def validate_run(src: str, model: str, family: str, dtype: str, busy: bool = False):
    def build(folder: Path) -> None:
        _copy(src, folder)
        _config(folder, "validate", model, family, "random", model_dtype=dtype,
                **({TIMING_KEY: BUSY} if busy else {}))
    return build


def video_run(model: str, family: str, frame: int, reading: str | None = None):
    def build(folder: Path) -> None:
        folder.mkdir(parents=True)
        rows = [("none", 576, frame, 4 * frame, 0.5), ("litelvlm", 196, round(frame * 196 / 576), frame, 0.4),
                ("fastv", 81, None, frame // 2, 0.3)]
        pd.DataFrame([{"method": m, "budget": b, "context_tokens": c, "llm_visual_tokens": t, "J": v, "F": v,
                       "J&F": v} for m, b, c, t, v in rows]).to_csv(folder / "summary.csv", index=False)
        _config(folder, "video", model, family, "random", family=family,
                **({"budget_reading": reading} if reading else {}))
    return build


def positions_run(model: str, family: str):
    def build(folder: Path) -> None:
        folder.mkdir(parents=True)
        rows = [
            {"method": m, "budget": b, "official_rule": r, "keep_available": True,
             "seg_cos_keep_renumber": 0.9,
                 "seg_rel_diff_keep_renumber": 0.1, "mask_iou_keep_renumber": 0.8, "mask_iou_keep_none": 0.7,
                 "mask_iou_renumber_none": 0.6} for m, r in (("fastv", "keep"), ("visionzip", "renumber"))
                for b in (64, 16)]
        pd.DataFrame(rows).to_csv(folder / "positions.csv", index=False)
        _config(folder, "positions", model, family, "random")
    return build


def _grounding_rows(protocol: str, budget: int) -> pd.DataFrame:
    import numpy as np

    rng = np.random.default_rng(0)
    return pd.DataFrame([{"protocol": protocol, "method": m, "budget": b, "image_id": k // 2, "ref_id": k,
                          "ann_id": k, "sent_id": k, "turn": 0,
                          "intersection": int(100 * s * rng.uniform(0.9, 1)), "union": 200, "iou": s / 2}
                         for m, b, s in (("none", 0, 1.0), ("litelvlm", budget, 0.9), ("fastv", budget, 0.8))
                         for k in range(6)])


def grounding_run(model: str, family: str, budget: int, protocols=("per-expression", "official")):
    def build(folder: Path) -> None:
        from analysis.common.grounding.grounding_scoring import summarize

        for protocol in protocols:
            d = folder / protocol
            d.mkdir(parents=True)
            rows = _grounding_rows(protocol, budget)
            rows.to_parquet(d / "grounding.parquet")
            summarize(rows).to_csv(d / "summary.csv", index=False)
            _config(d, "grounding", model, family, "random", protocol=protocol)
    return build


def importance_run(model: str, family: str, fixed_n: int | None):
    def build(folder: Path) -> None:
        folder.mkdir(parents=True)
        stats = {f"{m}_{x}": v for m in ("spearman", "kendall") for x,
                 v in (("mean", 0.2), ("lo", 0.1), ("hi", 0.3))}
        stats.update(
            {f"jaccard_{k}_{x}": v for k in (8, 16) for x, v in (("mean", 0.2), ("lo", 0.1), ("hi", 0.3))})
        rows = [
            {"llm_signal": "attention", "clip_signal": c, "query": "seg", "area_bin": "all", "layer": la,
             **stats}
                for c in ("clip_rev_sim", "clip_sim") for la in (0, 1)]
        pd.DataFrame(rows).to_csv(folder / "summary.csv", index=False)
        pd.DataFrame(rows).to_parquet(folder / "importance.parquet")
        if fixed_n is None:
            pd.DataFrame({"image_id": [1, 2], "num_visual": [391, 420]}).to_csv(folder / "visual_tokens.csv",
                                                                               index=False)
        _config(folder, "importance", model, family, "random", num_visual_tokens=fixed_n)
    return build


def retention_run(model: str, family: str, grid: tuple[int, int], budgets: tuple[int, ...],
                  weights: str = "random"):
    def build(folder: Path) -> None:
        import numpy as np
        from PIL import Image

        (folder / "images").mkdir(parents=True)
        Image.fromarray(np.full((grid[0] * 4, grid[1] * 4, 3), 128, np.uint8)).save(
            folder / "images" / "7.png")
        rows = [{"image_id": 7, "method": m, "budget": b, "patch": p, "part": part, "text": "the dog"}
                for m in ("litelvlm", "random") for b in budgets for p in range(b)
                for part in [("similarity" if p < b // 2 else "context") if m == "litelvlm" else "kept"]]
        pd.DataFrame(rows).to_parquet(folder / "retention.parquet")
        pd.DataFrame({"image_id": [7], "patch": [0], "score": [0.1]}).to_parquet(
            folder / "retention_scores.parquet")
        _config(folder, "retention", model, family, weights, grid=list(grid))
    return build


def reversal_run(*runs: tuple[str, str, dict, str]):
    """Reversal runs (model, folder name, recorded options, weights), each a folder of one tree."""
    def build(folder: Path) -> None:
        for model, name, args, weights in runs:
            d = folder / name
            d.mkdir(parents=True)
            stat = {"auroc_reversed_mean": 0.6, "auroc_reversed_ci_low": 0.5, "auroc_reversed_ci_high": 0.7,
                    "n_sentences": 4}
            rows = [{"breakdown": "all", "group": "all", "layer": la, **stat} for la in (1, 2)]
            rows += [{"breakdown": b, "group": g, "layer": 2, **stat} for b, gs in
                     (("area_bin", ("small", "large")), ("category", ("dog", "cat"))) for g in gs]
            pd.DataFrame(rows).to_csv(d / "summary.csv", index=False)
            pd.DataFrame(rows).to_parquet(d / "reversal.parquet")
            fam = args.get("family", "clip")
            _config(d, "reversal", model, fam, weights, clip={"model": model},
                    args={"grid": "clip", "space": "clip", "pad_to_square": False, **args})
    return build


def paired_run(model: str, family: str, budget: int):
    def build(folder: Path) -> None:
        import numpy as np

        from analysis.common.stats import accuracy_stats as acc
        from analysis.grounding import statistics as gs

        folder.mkdir(parents=True)
        rng = np.random.default_rng(0)
        rows = [
            {"protocol": "official", "method": m, "budget": b, "image_id": k // 2, "ref_id": k, "ann_id": k,
                 "sent_id": k, "turn": 0, "intersection": int(100 * s * rng.uniform(0.9, 1)), "union": 200,
                 "iou": s / 2} for m, b,
                s in (("none", 0, 1.0), ("litelvlm", budget, 0.9), ("fastv", budget, 0.8))
                for k in range(6)]
        stats = gs.metric_stats(pd.DataFrame(rows), "image")
        acc.comparisons_table(stats, ["ciou"], 20, 0, "image").to_csv(folder / "comparisons.csv", index=False)
        _config(folder, "grounding", model, family, "random", protocol="official")
    return build


TOY = str(ROOT / "litelvlm" / "toy" / "weights")  # the bundled toy CLIP (weights "toy")


def sink_run(model: str, layers: int, heads: int, weights: str = "random"):
    def build(folder: Path) -> None:
        folder.mkdir(parents=True)
        rows = [{"layer": la, "head": h, "sos_mean": 0.5, "eos_mean": 0.1, "content_sum_mean": 0.4,
                 "uniform_mean": 0.1} for la in range(layers) for h in [*range(heads), -1]]
        pd.DataFrame(rows).to_csv(folder / "summary.csv", index=False)
        pd.DataFrame(rows).to_parquet(folder / "sink.parquet")
        _config(folder, "sink", model, "clip", weights)
    return build


CASES = [
    Case("efficiency", "glamm-float32-busy",
         efficiency_run("efficiency/scaled_cpu", "glamm-tiny-random:0", "glamm",
                                                            "float32", busy=True),
         dtype="float32", model_family="glamm", busy=True, timed=("prefill_", "cuda_"), slow=True),
    Case("efficiency", "videoglamm-bfloat16",
         efficiency_run("efficiency/videoglamm_flops", "videoglamm-random:0",
                                                             "videoglamm", "bfloat16"),
         dtype="bfloat16", model_family="videoglamm"),
    Case("validate", "glamm-bfloat16",
         validate_run("validate/glamm-7b-random_cpu_bf16", "glamm-7b-random",
                                                        "glamm", "bfloat16"),
         says=("bfloat16 (not quantized)",), dtype="bfloat16", model_family="glamm", slow=True),
    Case("validate", "unipixel-float32", validate_run("validate/unipixel-3b-random_cpu_bf16",
                                                               "unipixel-3b-random", "unipixel", "float32"),
         says=("float32 (not quantized)",), dtype="float32", model_family="unipixel", slow=True),
    Case("validate", "glamm-cuda-float32-busy", validate_run("validate/glamm-7b-random_cuda_none",
                                                                 "glamm-7b-random", "glamm", "float32",
                                                                 busy=True),
         says=("float32 (not quantized)",), dtype="float32", model_family="glamm", busy=True,
         timed=("prefill_",)),
    Case("positions", "glamm", positions_run("glamm-tiny-random:0", "glamm"), model_family="glamm", slow=True)
    , Case("positions", "unipixel", positions_run("unipixel-tiny-random:5", "unipixel"),
         model_family="unipixel"),
    Case("paired", "glamm-64", paired_run("glamm-tiny-random:0", "glamm", 64), model_family="glamm",
         not_tokens=("576",), slow=True),
    Case("paired", "sa2va-16", paired_run("sa2va-tiny-random:0", "sa2va", 16), model_family="sa2va",
         not_tokens=("576",)),
    Case("grounding", "glamm-144", grounding_run("glamm-tiny-random:0", "glamm", 144), model_family="glamm",
         not_tokens=("576",), slow=True),
    Case("grounding", "glamm-toy-36", grounding_run("glamm-tiny-random:1", "glamm", 36, ("official",)),
         model_family="glamm", not_tokens=("576",)),
    Case("grounding_merged_grid", "unipixel", grounding_run("unipixel-tiny-random:5", "unipixel", 36,
                                                       ("per-expression",)), model_family="unipixel",
         not_tokens=("576",)),
    Case("grounding_merged_grid", "sa2va",
         grounding_run("sa2va-tiny-random:0", "sa2va", 16, ("per-expression",)),
         model_family="sa2va", not_tokens=("576",), slow=True),
    Case("importance", "glamm-576", importance_run("glamm-tiny-random:0", "glamm", 576), model_family="glamm",
         slow=True),
    Case("importance", "unipixel-per-image", importance_run("unipixel-tiny-random:5", "unipixel", None),
         model_family="unipixel", not_tokens=("576",)),
    Case("retention", "clip-24x24", retention_run("tiny336-random", "clip", (24, 24), (64, 16))),
    Case("retention", "unipixel-8x10", retention_run("unipixel-tiny-random:5", "unipixel", (8, 10), (36, 9)),
         model_family="unipixel", not_tokens=("576",), slow=True),
    Case("reversal", "two-clips", reversal_run(("tiny336-random", "run0", {}, "random"),
                                               ("tiny336-random:1", "run1", {}, "random")), slow=True),
    Case("reversal", "toy", reversal_run((TOY, "toy", {}, "toy")), weights="toy"),
    Case("reversal_grid", "unipixel-grids", reversal_run(
        ("tiny336-random", "clip", {"pad_to_square": True}, "random"),
        ("tiny336-random", "unipixel", {"pad_to_square": True, "grid": "unipixel"}, "random")),
        model_family="unipixel", says=("UniPixel's merged grid",)),
    Case("reversal_grid", "unipixel-llm-space", reversal_run(
        ("tiny336-random", "clip", {"pad_to_square": True, "grid": "unipixel"}, "random"),
        ("unipixel-tiny-random:5", "llm-space", {"grid": "unipixel", "space": "llm", "family": "unipixel"},
         "random")), model_family="unipixel"),
    Case("sink", "tiny336", sink_run("tiny336-random", 2, 2), slow=True),
    Case("sink", "toy", sink_run(TOY, 3, 2, "toy"), weights="toy"),
    Case("video", "sa2va-36",
         video_run("sa2va-tiny-random:0", "sa2va", 36, "per-frame fraction of the N merged tokens (the "
                                                       "reading it records)"),
         model_family="sa2va", says=("(36 a frame)", "the reading it records"), not_tokens=("all 576",)),
    Case("video", "videoglamm-144", video_run("videoglamm-tiny-random:0", "videoglamm", 144),
         model_family="videoglamm", says=("(144 a frame)",), not_tokens=("all 576",), slow=True),
]


def test_every_registered_family_has_two_cases():
    """The table covers every figure set the registry holds, each in at least two variants."""
    counts = {name: sum(c.figure_set == name for c in CASES) for name in registry.FIGURE_SETS}
    assert {k: v for k, v in counts.items() if v < 2} == {}
    # each drawn in the default suite
    assert {c.figure_set for c in CASES if not c.slow} == set(registry.FIGURE_SETS)


def _draw(case: Case, tmp_path: Path, monkeypatch) -> dict:
    """Draw ``case``'s run through the tree route, capturing every figure instead of writing it."""
    from analysis.common.presentation import figure_set as family_mod
    from analysis.common.presentation import style
    from analysis.figures.tree import draw_tree

    root = tmp_path / "runs"
    folder = root / case.variant
    case.build(folder)
    drawn: dict = {}

    def capture(fig, out_dir, name, **_):
        drawn[name] = fig
        return [Path(out_dir) / f"{name}.png"]

    monkeypatch.setattr(style, "save_figure", capture)
    monkeypatch.setattr(family_mod, "same_png", lambda fig, png: False)
    fs = registry.FIGURE_SETS[case.figure_set]
    draw_tree(root, tmp_path / "out", [fs], list(registry.FIGURE_SETS.values()), explicit=True)
    assert drawn, f"{case.figure_set} drew nothing from {folder}"
    return drawn


#: each case of :data:`CASES` drawn once per test session: (figure_set, variant) -> (its figures, its runs)
_DRAWN: dict = {}


def drawn(case: Case, tmp_path_factory) -> tuple[dict, Path]:
    """``case`` drawn by :func:`_draw` once per test session (the checks only read its figures): (its
    figures, the folder of its runs)."""
    key = (case.figure_set, case.variant)
    if key not in _DRAWN:
        tmp = tmp_path_factory.mktemp(f"drawn-{case.figure_set}-{case.variant}")
        with pytest.MonkeyPatch.context() as monkeypatch:
            _DRAWN[key] = (_draw(case, tmp, monkeypatch), tmp / "runs")
    return _DRAWN[key]


def _params():
    for c in CASES:
        yield pytest.param(c, id=f"{c.figure_set}-{c.variant}", marks=[pytest.mark.slow] if c.slow else [])


@pytest.mark.parametrize("case", list(_params()))
def test_every_figure_states_its_runs_own_labels(case, tmp_path_factory):
    import matplotlib.pyplot as plt

    figs, runs = drawn(case, tmp_path_factory)
    config = json.loads(sorted((runs / case.variant).rglob("config.json"))[0].read_text())
    ident = config["identity"]
    prefix, _ = runs_name(case.figure_set, [ident])

    def own(name: str) -> str:
        """A file name's own part: after the set and the model, and the run's folder (``variant``)."""
        return name[len(prefix) + 1:].removeprefix(f"{case.variant}_")

    try:
        for name, fig in figs.items():
            texts = all_texts(fig)
            shown = " | ".join(t.replace("\n", " ") for t in texts)
            # (a) the run's own family/model and its weights
            assert f"{ident['family']}/{Path(ident['model']).name}" in shown, (name, shown)
            assert f"{case.weights} weights" in shown.lower(), (name, case.weights, shown)
            for text in case.says:
                assert text in shown, (name, text, shown)
            # (b) no dtype, family or token count the run does not have
            if case.dtype is not None:
                for other, words in DTYPE_WORDS.items():
                    if other != case.dtype:
                        found = [w for w in words if re.search(rf"\b{w}\b", shown)]
                        assert not found, (name, found, shown)
            if case.model_family is not None:
                mine = FAMILY_WORDS[case.model_family]
                for other, word in FAMILY_WORDS.items():
                    if other != case.model_family and word not in mine:
                        assert not re.search(rf"\b{word}\b", shown.replace(mine, "")), (name, word, shown)
            for tokens in case.not_tokens:
                assert tokens not in shown, (name, tokens, shown)
            # (c) a busy run's caveat under every figure of measured times, and only there
            caveat = any("TIMES UNRELIABLE" in t for t in texts)
            assert caveat == (case.busy and own(name).startswith(case.timed or ("\0",))), (name, shown)
    finally:
        plt.close("all")
    if case.busy:
        assert any(own(n).startswith(case.timed) for n in figs), ("no timed figure drawn",
                                                                               list(figs))
