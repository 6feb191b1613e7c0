"""A run owns its ``--out`` folder (litelvlm.runs.run_folder.RunFolder, litelvlm.runs.parts), on
every resumable study: a lock against a second run, stale temporary files removed, nothing left behind on an
error, all images unreadable an error, unreadable images retried, truncated files named or recomputed, stale
optional outputs removed, the thread count recorded, and paths that work from any directory."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pandas as pd
import pytest

from analysis.common.runs.study import portable_paths, read_json, resolve_config_path
from litelvlm.cli import main
from litelvlm.errors import LiteLVLMError
from litelvlm.runs.parts import PartStore, read_parquet
from litelvlm.runs.resume import check_config
from litelvlm.runs.run_folder import RunFolder

pytestmark = pytest.mark.usefixtures("one_glamm_pipeline")


def study_args(study: str, data: Path, out: Path, images: Path | None = None) -> list[str]:
    """A small command line of each resumable study on the REFER folder ``data``."""
    img = ["--image-dir", str(images)] if images else []
    return {
        "eval-grounding":
        ["eval-grounding", "--refer-dir", str(data), *img, "--out", str(out), "--limit", "2",
                           "--methods", "none", "--chunk", "1"],
        "importance": ["importance", "--refer-dir", str(data), *img, "--out", str(out), "--limit", "2",
                       "--max-sentences", "1", "--signals", "attention", "--no-per-head", "--n-boot", "20"],
        "reversal": ["reversal", "--model", "tiny-random", "--refer-dir", str(data), *img, "--out", str(out),
                     "--limit", "20", "--n-boot", "20"],
        "sink": ["sink", "--model", "tiny-random", "--refer-dir", str(data),
                 "--image-dir", str(images or data / "images"), "--out", str(out), "--limit", "10",
                 "--n-boot", "20"],
        "retention": ["retention", retention_data_option(), str(data), "--out", str(out), "--limit", "2"],
    }[study]


def retention_data_option() -> str:
    """``--refer-dir`` (the shared vocabulary) or, in older versions, ``--data``."""
    from analysis.retention.compute import RetentionArgs

    return "--refer-dir" if "refer_dir" in RetentionArgs.__dataclass_fields__ else "--data"


STUDIES = ["eval-grounding", "importance", "reversal", "sink", "retention"]


def fake_refer(tmp_path: Path, coco: Path, bad: set[str] | None = None) -> Path:
    """A REFER folder beside ``coco`` whose images are links, except those named in ``bad`` (all when
    None), which are files that are not images."""
    root = tmp_path / "refer"
    (root / "images").mkdir(parents=True)
    for f in ("refs(unc).p", "instances.json"):
        (root / f).symlink_to(coco / f)
    for f in (coco / "images").iterdir():
        if bad is None or f.name in bad:
            (root / "images" / f.name).write_bytes(b"this is not an image")
        else:
            (root / "images" / f.name).symlink_to(f)
    return root


@pytest.mark.parametrize("study", STUDIES)
def test_second_run_on_a_locked_folder_fails(study, coco128, tmp_path, capsys):
    out = tmp_path / "out"
    with RunFolder(out):
        assert main(study_args(study, coco128, out)) == 2
    err = capsys.readouterr().err
    assert "in use by another run" in err and str(out) in err
    assert not any(out.iterdir())   # the locked run's folder is untouched (and its lock gone with it)


@pytest.mark.parametrize("study", STUDIES)
def test_all_images_unreadable_is_an_error_and_writes_nothing(study, coco128, tmp_path, capsys):
    data = fake_refer(tmp_path, coco128)
    out = tmp_path / "out"
    assert main(study_args(study, data, out)) == 2
    err = capsys.readouterr().err
    assert "no image could be read" in err and "Traceback" not in err
    assert not out.exists()


@pytest.mark.parametrize("option", [["--methods", "fastv", "--fastv-layer", "99"],
                                    ["--methods", "llm-attention", "--attention-layer", "99"]])
def test_out_of_range_layer_writes_nothing(option, coco128, tmp_path, capsys):
    out = tmp_path / "out"
    args = study_args("eval-grounding", coco128, out)
    assert main([*args[:-4], *option]) == 2
    assert "99" in capsys.readouterr().err and not out.exists()


def test_an_error_in_an_existing_folder_leaves_it_as_it_was(coco128, tmp_path, finished_runs):
    out = finished_runs.copy(lambda o: study_args("reversal", coco128, o), tmp_path / "out")   # finished
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert main([*study_args("reversal", fake_refer(tmp_path, coco128), out), "--no-cache"]) == 2
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before


@pytest.mark.parametrize("study", ["eval-grounding", "importance", "reversal"])
def test_repaired_image_is_retried(study, coco128, tmp_path, finished_runs):
    first = "COCO_train2014_000000000009.jpg"
    data = fake_refer(tmp_path, coco128, bad={first})
    out, fresh = tmp_path / "out", tmp_path / "fresh"
    assert main(study_args(study, data, out)) == 0
    if study == "eval-grounding":
        assert pd.read_csv(out / "skipped.csv")["image_id"].tolist() == [9]
    (data / "images" / first).unlink()
    (data / "images" / first).symlink_to(coco128 / "images" / first)   # repaired
    assert main(study_args(study, data, out)) == 0
    # a fresh run on the same images (the repaired folder's are links to these)
    finished_runs.copy(lambda o: study_args(study, coco128, o), fresh)
    table = {"eval-grounding": "grounding.parquet", "importance": "importance.parquet",
             "reversal": "reversal.parquet"}[study]
    assert 9 in set(pd.read_parquet(out / table)["image_id"])
    assert (out / table).read_bytes() == (fresh / table).read_bytes()
    if study == "eval-grounding":
        assert pd.read_csv(out / "skipped.csv").empty


@pytest.mark.odd_case("cleanup", "the user's own hidden temporary files in --out", "eval-grounding, reversal",
                       "kept: only the project's own *.litelvlm-tmp files and staging folders are removed")
@pytest.mark.parametrize("study", ["eval-grounding", "reversal"])
def test_stale_tmp_files_are_removed_and_nothing_else(study, coco128, tmp_path):
    out = tmp_path / "out"
    (out / "parts").mkdir(parents=True)
    (out / "notes").mkdir()
    ours = (out / ".grounding.parquet.abc.litelvlm-tmp", out / "parts" / ".part-1.json.x.litelvlm-tmp",
            out / ".litelvlm-stage-x1" / "summary.csv")
    theirs = (out / "notes" / ".draft.tmp", out / ".scratch.tmp", out / "notes" / "a.litelvlm-tmp.txt")
    for p in ours + theirs:
        p.parent.mkdir(exist_ok=True)
        p.write_text("left by kill -9" if p in ours else "the user's")
    assert main(study_args(study, coco128, out)) == 0
    assert not any(p.exists() for p in ours) and not (out / ".litelvlm-stage-x1").exists()
    assert all(p.read_text() == "the user's" for p in theirs)


def test_truncated_part_is_recomputed_and_truncated_config_named(coco128, tmp_path, capsys, finished_runs):
    out, fresh = tmp_path / "out", tmp_path / "fresh"
    finished_runs.copy(lambda o: study_args("eval-grounding", coco128, o), out)   # a finished run
    shutil.copytree(out, fresh)   # the finished run's results as they were before any damage
    parts = sorted((out / "parts").glob("part-*.parquet"))
    parts[0].write_bytes(parts[0].read_bytes()[:50])            # a partial copy
    marker = sorted((out / "parts").glob("part-*.json"))[1]
    marker.write_text(marker.read_text()[:5])
    assert main(study_args("eval-grounding", coco128, out)) == 0
    for f in ("grounding.parquet", "summary.csv"):
        assert (out / f).read_bytes() == (fresh / f).read_bytes()
    config = out / "config.json"
    whole = config.read_bytes()
    config.write_bytes(whole[:20])   # a damaged earlier result: one line naming it, never rewritten silently
    capsys.readouterr()
    assert main(study_args("eval-grounding", coco128, out)) == 2
    err = capsys.readouterr().err
    assert str(config) in err and "damaged" in err and len(
        [x for x in err.splitlines() if "error" in x]) == 1, err
    assert config.read_bytes() == whole[:20]
    config.write_bytes(whole)
    assert read_json(config)["run"]
    record = out / "parts" / "config.json"       # the parts' record: what a resume is checked against
    record.write_text(record.read_text()[:20])
    assert main(study_args("eval-grounding", coco128, out)) == 2
    err = capsys.readouterr().err
    assert str(record) in err and "not valid JSON" in err
    config.write_text(config.read_text()[:20])
    from analysis.grounding.compute import load_grounding

    with pytest.raises(LiteLVLMError, match="config.json"):
        load_grounding(out)
    (out / "grounding.parquet").write_bytes(b"PAR1 truncated")
    with pytest.raises(LiteLVLMError, match="grounding.parquet"):
        read_parquet(out / "grounding.parquet")


def test_part_store_verify_and_readers(tmp_path):
    store = PartStore(tmp_path)
    store.write([1, 2], pd.DataFrame({"image_id": [1, 2]}), {"skipped": []})
    m = store.write([], pd.DataFrame(), {"skipped": [{"image_id": 3, "path": "x", "reason": "bad"}]},
                    tried=[3])
    assert store.done() == {1, 2} and [s["image_id"] for s in store.skipped()] == [3]
    m.write_text("{")
    with pytest.raises(LiteLVLMError, match=m.name):
        read_json(m)
    assert store.verify() == [m] and not m.exists() and store.done() == {1, 2}


@pytest.mark.parametrize("study,optional", [
    ("reversal", ["similarity_maps.parquet"]),
    ("sink", ["eos_attention_examples.parquet", "ablation.parquet", "ablation_summary.csv"]),
])
def test_rerun_with_other_options_drops_old_optional_outputs(study, optional, coco128, shared_data, tmp_path,
                                                            finished_runs):
    out = tmp_path / "out"
    args = study_args(study, coco128, out)
    maps = ["--save-maps", "2"] if study == "reversal" else []
    finished_runs.copy(lambda o: [*study_args(study, coco128, o), *maps], out)   # the first run
    assert all((out / f).exists() for f in optional)
    if study == "reversal":
        assert main(args) == 0
    else:  # text only, no examples
        assert main(["sink", "--model", "tiny-random", "--out", str(out), "--limit", "10", "--examples", "0",
                     "--expressions", str(shared_data / "refcoco_unc_expressions" / "val.json")]) == 0
    assert not any((out / f).exists() for f in optional)


@pytest.mark.parametrize("study", STUDIES)
def test_config_records_threads_and_portable_paths(study, coco128, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    data = Path(os.path.relpath(coco128, tmp_path))
    assert main(study_args(study, data, Path("out"))) == 0
    cfg = json.loads((tmp_path / "out" / "config.json").read_text())
    assert isinstance(cfg["torch_threads"], int) and cfg["torch_threads"] >= 1
    key = retention_data_option()[2:].replace("-", "_") if study == "retention" else "refer_dir"
    entry = cfg["paths"][key]
    # absolute, and the data's folder (symlinks, e.g. a linked ../shared, are kept as typed)
    assert entry["typed"] == str(data) and Path(entry["absolute"]).is_absolute()
    assert Path(entry["absolute"]).resolve() == coco128.resolve()
    assert (tmp_path / "out" / entry["from_results"]).resolve() == coco128.resolve()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    assert Path(resolve_config_path(cfg, key, tmp_path / "out")).resolve() == coco128.resolve()


def test_results_with_relative_paths_draw_from_another_directory(coco128, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    data = os.path.relpath(coco128, tmp_path)
    assert main(["reversal", "--model", "tiny-random", "--refer-dir", data, "--out", "results/reversal",
                 "--limit", "20", "--n-boot", "20", "--save-maps", "1"]) == 0
    moved = tmp_path / "moved"
    moved.mkdir()
    monkeypatch.chdir(moved)
    assert main(["figures", "--results", str(tmp_path / "results"), "--figure-set", "reversal",
                 "--out", str(moved / "figs")]) == 0
    assert list((moved / "figs").glob("reversal_clip-tiny-random_map_0.*"))   # named after the run's model


def test_paths_resolve_relative_to_a_moved_results_folder(tmp_path):
    data, results = tmp_path / "new" / "data", tmp_path / "new" / "results" / "run"
    data.mkdir(parents=True)
    results.mkdir(parents=True)
    cfg = {"args": {"refer_dir": "../gone/data"},
           "paths": {"refer_dir": {"typed": "../gone/data", "absolute": "/nonexistent/data",
                                   "from_results": "../../data"}}}
    assert Path(resolve_config_path(cfg, "refer_dir", results)).resolve() == data.resolve()
    assert portable_paths({"refer_dir": str(data), "image_dir": None}, results)["refer_dir"]["from_results"] \
        == os.path.join("..", "..", "data")


def test_check_config_names_the_option_and_ignores_threads(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"seed": 0, "limit": 2, "torch_threads": 1}))
    check_config(tmp_path, {"seed": 0, "limit": 2, "torch_threads": 2})
    check_config(tmp_path, {"seed": 0, "limit": 5, "torch_threads": 1},
                 growable={"limit": lambda o, n: n >= o})
    with pytest.raises(LiteLVLMError, match="--seed"):
        check_config(tmp_path, {"seed": 1, "limit": 2})


def test_lock_is_released_and_error_cleans_a_new_folder(tmp_path):
    out = tmp_path / "new"
    with pytest.raises(LiteLVLMError), RunFolder(out):
        (out / "half.parquet").write_text("x")
        raise LiteLVLMError("bad")
    assert not out.exists()
    with RunFolder(out):
        pass
    with RunFolder(out):   # released
        pass
    shutil.rmtree(out)


#: docs/importance.md, "Thread count": the bound on importance's results between 1 and 2 torch threads
PEARSON_BOUND, RANK_BOUND = 1e-5, 1e-2


def test_importance_thread_count_bound(coco128, tmp_path):
    """importance's float32 reductions split differently over threads: Pearson values move in the 7th
    digit (measured <= 1.2e-7); rank statistics stay equal unless two scores are within that of a tie."""
    import numpy as np

    from analysis.importance.compute import ImportanceArgs, run_importance
    from litelvlm.threads import torch_threads

    limit = "limit_images" if "limit_images" in ImportanceArgs.__dataclass_fields__ else "limit"
    rows = {}
    for n in (1, 2):
        a = ImportanceArgs(refer_dir=str(coco128), out=str(tmp_path / str(n)), max_sentences=1, n_boot=20,
                           signals=["attention", "saliency", "integrated_gradients"], ig_steps=4,
                           per_head=False, **{limit: 1})
        with torch_threads(n):
            rows[n] = run_importance(a)[0]
        assert read_json(tmp_path / str(n) / "config.json")["torch_threads"] == n
    one, two = rows[1], rows[2]
    assert len(one) == len(two) > 0
    assert np.nanmax(np.abs(one["pearson"] - two["pearson"])) <= PEARSON_BOUND
    for m in [c for c in one.columns if c in ("spearman", "kendall") or c.startswith("jaccard_")]:
        assert np.nanmax(np.abs(one[m] - two[m])) <= RANK_BOUND, m
