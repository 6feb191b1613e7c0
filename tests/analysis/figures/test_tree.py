"""One results tree (``litelvlm figures --results DIR``): runs of every registered model family and of the
studies under one folder, each drawn under its own family and model name, never merged with another run nor
drawn under another's name; what cannot be drawn is skipped with one line naming the folder and the reason.

The tree is built once per session from real runs: every family of :func:`litelvlm.registry.families.cards`
(so a new family joins by registering) with its tiny random preset at the cheapest arguments. The slow tests
run each family's grounding study (images: ``eval-grounding``; video: ``eval-video``), the CLIP studies
(``reversal``, ``sink``) and the reversal in a merged-grid family's LLM input space, and every study of every
family (``eval-video`` on each family with a video path) and the CLIP studies, in one tree; the default test
(what cannot be drawn) one family's grounding run beside the folders no figure set draws."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from analysis.common.runs.identity import identity_tag, read_identity
from litelvlm.budget import Budget
from litelvlm.cli import main
from litelvlm.registry.families import card, card_of, cards, family_names, video_eval

CLIP = "tiny336-random"
VIDEO = ["--anno-sets", "0", "--synthetic-videos", "1", "--synthetic-frames", "2", "--synthetic-seed", "11"]


def tiny_model(family: str) -> str:
    """The family's tiny random preset, at its default seed."""
    name = next(n for n in card(family).presets if "tiny" in n)
    return f"{name}:{card(family).seed(name)}"


def study_argv(study: str, family: str, out: Path, coco: Path) -> list[str] | None:
    """The cheapest command line of ``study`` for ``family``'s tiny model into ``out`` (None: the study takes
    no model of a family)."""
    model, image = tiny_model(family), card(family).input == "image"
    refer = ["--refer-dir", str(coco), "--threads", "1"]
    argv = {
        "grounding":
        ["eval-grounding", "--model", model, *refer, "--limit-images", "1", "--methods", "random",
                      "--budgets", "8", "--n-boot", "10"],
        "video":
        ["eval-video", "--model", model, *VIDEO, *_video_methods(model), "--budgets", "16", "--n-boot", "10"],
        "importance": ["importance", "--model", model, *refer, "--limit-images", "1", "--max-sentences", "1"],
        "validate":
        ["validate", "--model", model, *refer, "--methods", "random", "--budgets", "8", "--repeats", "1"],
        "positions": ["positions", "--model", model, *refer, "--methods", "fastv", "--budgets", "8"],
        "retention": ["retention", "--model", model, *refer, "--limit-images", "1", "--budgets", "8"],
        "reversal":
        ["reversal", "--space", "llm", "--grid", family, "--model", model, *refer, "--limit-sentences", "4",
                     "--n-boot", "10"],
        "efficiency": ["efficiency", "--arch", _arch(family), "--flops-only", "--budgets", "64", "--methods",
                       "none,random", "--no-figures"],
    }[study]
    if (study == "grounding" and not image) or (study == "video" and not card(family).video_eval):
        return None
    return [*argv, "--out", str(out)]


def _video_methods(model: str) -> list[str]:
    """``--methods random`` where the model's video path prunes, else nothing (the unpruned run only)."""
    if not card_of(model).video_eval or video_eval(model).method_errors(["random"], [Budget(16)]):
        return []
    return ["--methods", "random"]


def _arch(family: str) -> str:
    """The efficiency study's ``--arch`` of the family's tiny preset (its random model string without
    ``-random``)."""
    return tiny_model(family).split(":")[0].removesuffix("-random")


MODEL_FAMILIES = family_names()
STUDIES = ("grounding", "video", "importance", "validate", "positions", "retention", "reversal", "efficiency")
#: the merged-grid family whose LLM input space the default tree's reversal run reads
MERGED = next(c.name for c in cards() if c.merged_grid)


def _build(root: Path, coco: Path, pairs: list[tuple[str, str]]) -> dict[tuple[str, str], int]:
    """Run each (family, study) into ``root/<family>/<study>``; {pair: exit status}."""
    status = {}
    for family, study in pairs:
        argv = study_argv(study, family, root / family / study, coco)
        if argv is not None:
            status[(family, study)] = main(argv)
    return status


def _default_pairs() -> list[tuple[str, str]]:
    return [(f, "grounding" if card(f).input == "image" else "video")
            for f in MODEL_FAMILIES] + [(MERGED, "reversal")]


def _clip_runs(root: Path, coco: Path) -> None:
    """The CLIP studies' runs (family ``clip``): the reversal and the text-attention sink of one tiny random
    CLIP."""
    clip = ["--model", CLIP, "--refer-dir", str(coco), "--limit-sentences", "8", "--n-boot", "10",
            "--threads", "1"]
    assert main(["reversal", *clip, "--out", str(root / "clip" / "reversal")]) == 0
    assert main(["sink", *clip, "--out", str(root / "clip" / "sink")]) == 0


@pytest.fixture(scope="session")
def results_tree(tmp_path_factory, shared_data):
    """(tree, exit statuses): each family's grounding (or video) run, the reversal in a merged-grid family's
    LLM input space, the CLIP runs (reversal, sink), a run folder written before run identities (its
    ``identity`` removed), a run missing its tables, and a model folder."""
    coco = shared_data / "coco128_refer"
    root = tmp_path_factory.mktemp("tree") / "runs"
    status = _build(root, coco, _default_pairs())
    _clip_runs(root, coco)
    _undrawable(root)
    return root, status


@pytest.fixture(scope="module")
def undrawable_tree(tmp_path_factory, shared_data):
    """The tree of what cannot be drawn: the first family's grounding (or video) run, and beside it the
    folders :func:`_undrawable` adds (no figure set can draw them)."""
    root = tmp_path_factory.mktemp("undrawable") / "runs"
    assert set(_build(root, shared_data / "coco128_refer", _default_pairs()[:1]).values()) == {0}
    _undrawable(root)
    return root


def _undrawable(root: Path) -> None:
    """Beside the first family's run in ``root``: a copy written before run identities (its ``identity``
    removed), a copy missing its tables, and a model folder."""
    family, study = _default_pairs()[0]
    first = root / family / study
    old = root / "old" / "grounding"
    shutil.copytree(first, old, ignore=shutil.ignore_patterns("parts", ".lock"))
    config = _config(old)
    del config["identity"]
    (old / "config.json").write_text(json.dumps(config))
    damaged = root / "damaged" / first.name
    shutil.copytree(first, damaged, ignore=shutil.ignore_patterns("parts", ".lock"))
    for table in damaged.glob("*.*"):
        if table.name != "config.json":
            table.unlink()
    (root / "notes").mkdir()
    (root / "notes" / "config.json").write_text('{"architectures": ["LlamaForCausalLM"]}')


def _ident(family: str, study: str) -> dict:
    """The identity a run of ``study`` on ``family``'s tiny model records."""
    return read_identity({"identity": {"study": study, "family": family, "model": tiny_model(family)}})


def _config(folder: Path) -> dict:
    return json.loads((folder / "config.json").read_text())


def _runs(root: Path) -> dict[Path, dict]:
    """Every run folder of the tree: {folder: its identity}."""
    found = {}
    for path in root.rglob("config.json"):
        if "parts" not in path.parts and (ident := read_identity(_config(path.parent))) is not None:
            found[path.parent] = ident
    return found


def _check_tree(root: Path, out: Path, capsys) -> dict[str, list[str]]:
    """Draw the tree; check every run is drawn under its own name or skipped with one line naming it; returns
    {drawn line's run folder: its files}."""
    assert main(["figures", "--results", str(root), "--out", str(out), "--verbose"]) == 0  # every file named
    printed = capsys.readouterr().out.splitlines()
    drawn = [ln for ln in printed if re.match(r"figures: \w+: .* from /", ln)]
    skips = [ln for ln in printed if ln.startswith("figures: skipping /")]
    files: dict[str, list[str]] = {}
    runs = _runs(root)
    for line in drawn:
        fam, rest = line[len("figures: "):].split(": ", 1)
        folders, names = rest.split(" from ", 1)[1].split(": ", 1)
        group = [Path(f) for f in folders.split(", ")]
        tags = list(dict.fromkeys(identity_tag(runs[f]) for f in group))
        for name in names.split(", "):  # named after the runs' family and model, never another's
            assert name.startswith(f"{fam}_{'_'.join(tags)}_"), (name, tags)
            for other in {identity_tag(i) for i in runs.values()} - set(tags):
                assert f"_{other}_" not in name, (name, other)
        for f in group:
            files.setdefault(str(f), []).extend(names.split(", "))
    # drawn, or skipped with a line naming it (and the figure set that could not draw it)
    for folder in runs:
        said = [ln for ln in skips
                if re.match(rf"figures: skipping (\S+, )*{re.escape(str(folder))}(: | \(\w+\): )", ln)]
        assert str(folder) in files or said, (folder, printed)
    source = {name: folder for folder, names in files.items() for name in names}
    by_bytes: dict[bytes, set[str]] = {}
    for png in out.glob("*.png"):  # no run drawn under another's name: equal files come from one run
        by_bytes.setdefault(png.read_bytes(), set()).add(source[png.name])
    assert all(len(runs) == 1 for runs in by_bytes.values()), [r for r in by_bytes.values() if len(r) > 1]
    return files


@pytest.mark.slow  # the default suite's time budget (about 10 s each)
def test_every_familys_runs_are_drawn_under_their_own_family_and_model(results_tree, tmp_path, capsys):
    root, status = results_tree
    assert all(rc == 0 for rc in status.values()), status
    files = _check_tree(root, tmp_path / "figures", capsys)
    for family in MODEL_FAMILIES:  # a registered family joins by itself
        ours = [f for folder, names in files.items() if folder.startswith(str(root / family)) for f in names]
        assert ours and all(identity_tag(read_identity({"identity": {"study": "x", "family": family,
                                                                     "model": tiny_model(family)}})) in f
                            for f in ours)
    drawn = [f for names in files.values() for f in names]
    assert any(f.startswith("reversal_clip-tiny336-random_") for f in drawn)
    assert any(f.startswith("sink_clip-tiny336-random_") for f in drawn)
    assert any(f.startswith(f"reversal_grid_{identity_tag(_ident(MERGED, 'reversal'))}_") for f in drawn)


def test_what_cannot_be_drawn_is_skipped_with_one_line_naming_the_folder(undrawable_tree, tmp_path, capsys):
    root = undrawable_tree
    assert main(
        ["figures", "--results", str(root), "--out", str(tmp_path / "f"), "--figure-set", "positions"]) == 2
    out = capsys.readouterr().out
    old = [ln for ln in out.splitlines()
           if ln.startswith(f"figures: skipping {root / 'old' / 'grounding'}: ")]
    assert len(old) == 1 and "records no study" in old[0]
    damaged = [ln for ln in out.splitlines() if ln.startswith(f"figures: skipping {root / 'damaged'}")]
    assert len(damaged) == 1 and "holds none of the tables" in damaged[0]
    assert f"figures: skipping {root / 'notes'}: " in out
    assert not (tmp_path / "f").exists()   # nothing drawn (no positions run): nothing written


@pytest.mark.slow
def test_every_study_of_every_family_in_one_tree(tmp_path, shared_data, capsys):
    """Every family x every study that takes a family's model, and the CLIP studies, in one tree: each run
    drawn under its own name; a study that refuses a family exits 2 with one line, and a run no figure set
    draws is skipped with one line."""
    pairs = [(f, s) for f in MODEL_FAMILIES for s in STUDIES]
    status = _build(tmp_path / "runs", shared_data / "coco128_refer", pairs)
    _clip_runs(tmp_path / "runs", shared_data / "coco128_refer")
    err = capsys.readouterr().err
    refused = [pair for pair, rc in status.items() if rc == 2]
    assert all(rc in (0, 1, 2) for rc in status.values()), status
    for family, study in refused:
        assert not (tmp_path / "runs" / family / study / "config.json").exists()
    assert err.count("\n") >= len(refused)
    for family in MODEL_FAMILIES:   # every family's video path makes its run
        if card(family).video_eval:
            assert status[(family, "video")] == 0, family
    files = _check_tree(tmp_path / "runs", tmp_path / "figures", capsys)
    for family in MODEL_FAMILIES:
        assert any(folder.startswith(str(tmp_path / "runs" / family)) for folder in files), family


def test_a_notebooks_smoke_results_are_made_on_the_commands_thread_count(monkeypatch):
    """``load_runs`` without a results tree makes smoke results as ``litelvlm figures --smoke`` does, on the
    thread count the command gives the model (one for a tiny or toy model) whatever the kernel's: with two
    threads the paired notebook's cIoU differed from the command's in its last digits."""
    import torch

    from analysis.figures import tree

    figure_set = tree.FIGURE_SETS["paired"]
    seen = []
    monkeypatch.setattr(type(figure_set), "load",
                        lambda self, *a, **k: seen.append(torch.get_num_threads()) or {"ok": True})
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        assert tree.load_runs(figure_set, None, smoke=True) == [{"ok": True}]
        assert tree.load_runs(figure_set, None, smoke=True, model="tiny-random:0") == [{"ok": True}]
        assert seen == [1, 1] and torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)
