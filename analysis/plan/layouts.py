"""Which data layouts a user has: REFER (RefCOCO, RefCOCO+, RefCOCOg) and the referring-video layouts
(Ref-DAVIS-17, Refer-YouTube-VOS, MeViS, as :mod:`litelvlm.video.datasets` reads them), found under the given
folders (each folder, its sub-folders and theirs), with the images or videos and expressions of each split the
paper's tables use, and one note per layout that is absent (light: no torch). A video split's meta files are
read as ``eval-video`` reads them: a damaged one is an error naming it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from litelvlm.data.refer import load_refs
from litelvlm.video.datasets import MEVIS, REF_DAVIS, REF_YOUTUBE_VOS, split_videos

#: The paper's RefCOCO tables: dataset -> (REFER split scheme, evaluation splits), 8 splits in all
REFER_SPLITS: dict[str, tuple[str, tuple[str, ...]]] = {
    "refcoco": ("unc", ("val", "testA", "testB")),
    "refcoco+": ("unc", ("val", "testA", "testB")),
    "refcocog": ("umd", ("val", "test")),
}
#: video dataset -> (its display name, the split scored here: the first whose masks are public, not train)
VIDEO_SPLITS: dict[str, tuple[str, str]] = {REF_DAVIS: ("Ref-DAVIS-17", "valid"),
                                            REF_YOUTUBE_VOS: ("Refer-YouTube-VOS", "valid"),
                                            MEVIS: ("MeViS", "valid_u")}


@dataclass(frozen=True)
class Split:
    """One evaluation split found on disk: its dataset, where it is, its units (images or videos) and
    expressions."""

    dataset: str
    split: str
    root: str
    units: int
    expressions: int
    split_by: str = ""
    kind: str = "image"
    #: video splits: the frames eval-video segments, each expression over all its video's frames
    frames: int = 0


def _folders(dirs: list[str]) -> list[Path]:
    """Each folder of ``dirs``, its sub-folders and theirs, in order (each once)."""
    out: list[Path] = []
    for d in map(Path, dirs):
        out.append(d)
        for child in sorted(p for p in d.iterdir() if p.is_dir()):
            out.append(child)
            out.extend(sorted(p for p in child.iterdir() if p.is_dir()))
    return list(dict.fromkeys(p.resolve() for p in out))


def _refer(folder: Path, notes: list[str]) -> list[Split]:
    """The paper's splits of the REFER layout in ``folder`` (none when it holds no refs file and
    instances.json). The dataset is the folder's name where it is one of RefCOCO's, else the one the split
    scheme implies."""
    found = []
    for refs in sorted(folder.glob("refs(*).p")):
        split_by = refs.name[5:-3]
        if not (folder / "instances.json").is_file():
            notes.append(f"{refs}: no instances.json beside it: not a REFER layout, skipped")
            continue
        dataset = folder.name.lower() if folder.name.lower() in REFER_SPLITS else \
            next((d for d, (s, _) in REFER_SPLITS.items() if s == split_by), None)
        if dataset is not None and dataset != folder.name.lower():
            notes.append(f"{refs}: the folder's name is none of {', '.join(REFER_SPLITS)}: read as {dataset} "
                         f"(the dataset of split scheme {split_by!r}); rename the folder to plan it as "
                         "another")
        if dataset is None or REFER_SPLITS[dataset][0] != split_by:
            notes.append(f"{refs}: split scheme {split_by!r} is not the paper's for "
                         f"{dataset or 'any dataset'}: skipped")
            continue
        counts: dict[str, tuple[set, int]] = {}
        for r in load_refs(refs):
            images, sentences = counts.setdefault(r["split"], (set(), 0))
            images.add(r["image_id"])
            counts[r["split"]] = (images, sentences + len(r["sentences"]))
        for split in REFER_SPLITS[dataset][1]:
            if split in counts:
                found.append(
                    Split(dataset, split, str(folder), len(counts[split][0]), counts[split][1], split_by))
            else:
                notes.append(f"{refs}: no {dataset} {split} split")
    return found


def _counts(dataset: str, folder: Path, split: str) -> tuple[int, int, int]:
    """(videos, expressions, expression-frames) of the videos ``eval-video`` reads in ``split``, its meta
    files read and checked as ``eval-video`` reads them (:func:`litelvlm.video.datasets.split_videos`:
    Refer-YouTube-VOS ``valid`` less the ``test`` videos; a damaged meta file is an error naming it)."""
    _, videos, order = split_videos(dataset, folder, split)
    exps = {v: len(videos[v]["expressions"]) for v in order}
    return len(order), sum(exps.values()), sum(n * len(videos[v]["frames"]) for v, n in exps.items())


def _video(folder: Path) -> list[Split]:
    """The video layout in ``folder``, if any: Refer-YouTube-VOS (``meta_expressions/test`` beside ``valid``),
    Ref-DAVIS-17 (``meta_expressions/valid``, ``valid/JPEGImages``, ``valid/Annotations``) or MeViS
    (``valid_u/meta_expressions.json``, ``valid_u/JPEGImages``, ``valid_u/mask_dict.json``). A meta file is
    found by its name, whatever it is (a folder in its place is refused when it is read)."""
    meta = folder / "meta_expressions"
    valid = meta / "valid" / "meta_expressions.json"
    if os.path.lexists(valid) and (folder / "valid" / "JPEGImages").is_dir():
        if os.path.lexists(meta / "test" / "meta_expressions.json"):
            dataset = REF_YOUTUBE_VOS
        elif (folder / "valid" / "Annotations").is_dir():
            dataset = REF_DAVIS
        else:
            return []
        videos, exps, frames = _counts(dataset, folder, "valid")
        return [Split(dataset, "valid", str(folder), videos, exps, kind="video", frames=frames)]
    mevis = folder / "valid_u"
    if os.path.lexists(mevis / "meta_expressions.json") and (mevis / "JPEGImages").is_dir() \
            and (mevis / "mask_dict.json").is_file():
        videos, exps, frames = _counts(MEVIS, folder, "valid_u")
        return [Split(MEVIS, "valid_u", str(folder), videos, exps, kind="video", frames=frames)]
    return []


def find_layouts(dirs: list[str]) -> tuple[list[Split], list[str]]:
    """(every split of the paper's tables found under ``dirs``, one note per layout that is absent or
    unusable)."""
    notes: list[str] = []
    splits: list[Split] = []
    for folder in _folders(dirs):
        splits += _refer(folder, notes) + _video(folder)
    splits = list(dict.fromkeys(splits))
    have = {s.dataset for s in splits}
    for dataset, (split_by, names) in REFER_SPLITS.items():
        if dataset not in have:
            notes.append(f"{dataset}: no REFER layout (a folder named {dataset} with refs({split_by}).p and "
                         f"instances.json) under --data-dirs: its {len(names)} splits are not planned")
    for dataset, (name, split) in VIDEO_SPLITS.items():
        if dataset not in have:
            notes.append(f"{name}: no layout under --data-dirs (litelvlm.video.datasets describes it): its "
                         f"{split} split is not planned")
    return splits, notes
