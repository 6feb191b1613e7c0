"""Figure set 7, quantization: memory, activation and prefill against the budget for each precision,
from ``validate`` folders (one per ``--quantize``), drawn per device."""

from __future__ import annotations

import importlib.util
import tempfile
from pathlib import Path

import pandas as pd

from analysis.common.presentation.figure_set import FigureSet
from analysis.common.presentation.smoke_inputs import coco128_dir
from analysis.common.runs.command import Screen
from analysis.common.runs.study import read_json
from analysis.quantization import plots
from analysis.validate import ValidateArgs, run
from litelvlm.budget import Budget
from litelvlm.data.fixtures import write_tiny_refer
from litelvlm.registry.families import DEFAULT_MODEL, card_of

#: the smoke run: the tiny random GLaMM, LiteLVLM at three budgets, each precision that is installed
SMOKE_BUDGETS = "576,64,32"


def smoke_quantization(out_dir: Path, model: str | None = None, screen: Screen = Screen()) -> None:
    """``validate`` on one image with the tiny random GLaMM, once per precision (bf16 only when bitsandbytes
    is not installed); a synthetic REFER folder when ../shared/data is absent."""
    data = coco128_dir()
    if data is None:
        data = write_tiny_refer(Path(tempfile.mkdtemp(prefix="litelvlm-refer-")))
    modes = ["none"] + (["int8", "nf4"] if importlib.util.find_spec("bitsandbytes") else [])
    for q in modes:  # every run's masks compared with the unquantized run's unpruned ones (its own for bf16)
        rc = run(ValidateArgs(refer_dir=str(data), model=model or DEFAULT_MODEL, dtype="bfloat16",
                              methods=["litelvlm"], budgets=Budget.parse_list(SMOKE_BUDGETS), quantize=q,
                              out=str(out_dir / q), compare_to=str(out_dir / "none")), screen=screen)
        if rc:
            raise RuntimeError(f"litelvlm validate --quantize {q} exited with status {rc}")


def read_quantization(results_dir: Path) -> dict:
    """Every ``validate`` folder under ``results_dir`` with a ``memory.csv``: its memory rows and its runs,
    each with the folder's ``device``, ``model`` and ``quantize``."""
    return read_quantization_runs(sorted(p.parent for p in Path(results_dir).rglob("memory.csv")))


def read_quantization_runs(folders: list[Path]) -> dict:
    """The memory rows and runs of the ``validate`` folders ``folders`` (each holding a ``memory.csv``), each
    with the folder's ``device``, ``model`` and ``quantize``."""
    mem, rows = [], []
    for path in (Path(f) / "memory.csv" for f in folders):
        cfg = read_json(path.parent / "config.json")
        tags = {"device": str(cfg.get("device", "cpu")), "model": cfg.get("model"),
                "quantize": cfg.get("quantize", "none"), "folder": path.parent.name,
                "model_dtype": cfg.get("model_dtype")}
        mem.append(pd.read_csv(path).assign(**{k: v for k, v in tags.items() if k != "quantize"}))
        rows.append(pd.read_csv(path.parent / "validate.csv").assign(**tags))
    return {"memory": pd.concat(mem, ignore_index=True), "validate": pd.concat(rows, ignore_index=True)}


def draw_quantization(tables: dict) -> dict:
    """Memory and LLM activation against the budget, one line per precision, per device; prefill too for GPU
    runs (the paper timed a GPU; CPU times are not its quantity, and they differ from run to run)."""
    mem, rows = tables["memory"], tables["validate"]
    figs = {}
    for device in sorted(mem["device"].unique()):
        figs[f"memory_{device}"], _ = plots.plot_memory_vs_precision(mem, device=device)
        figs[f"activation_{device}"], _ = plots.plot_activation_vs_precision(mem, device=device)
        if device.startswith("cuda"):
            figs[f"prefill_{device}"], _ = plots.plot_prefill_vs_precision(rows, device=device)
        on_device = rows[rows["device"] == device]
        if "mask_iou_vs_compare" in on_device and on_device["mask_iou_vs_compare"].notna().any():
            figs[f"masks_{device}"], _ = plots.plot_mask_agreement_vs_precision(rows, device=device)
    return figs


#: the figure set, registered in :data:`analysis.figures.registry.FIGURE_SETS`
FIGURE_SET = FigureSet(
    name="validate", notebook="07_quantization", title="Quantization (validate runs)",
    description="The budget x precision trade-off of `validate` runs (bf16, int8 and nf4 decoder layers): "
                "the whole model's memory (weights + activation peak) and the LLM's activation peak against "
                "the budget, per device, the prefill time of GPU runs, and (runs with `--compare-to` the "
                "bf16 folder) the IoU of the masks with the bf16 model's unpruned masks.",
    command="litelvlm validate --quantize",
    requires=("analysis.validate.memory", "analysis.quantization.plots"),
    subdir="validate", make_smoke=smoke_quantization, read=read_quantization, draw=draw_quantization,
    smoke_note=f"`litelvlm validate` on one COCO-128 image with the random-weight `{DEFAULT_MODEL}` "
               f"{card_of(DEFAULT_MODEL).display_name} in bf16, int8 and nf4 "
               "(int8 and nf4 need bitsandbytes)",
    results_files=("memory.csv", "*/memory.csv"), studies=("validate",), together="parent",
    read_runs=read_quantization_runs, timed=("prefill_",),
    make_results="for Q in none int8 nf4; do litelvlm validate --refer-dir REFER --quantize $Q --out "
                 "{out}/$Q --compare-to {out}/none; done")
