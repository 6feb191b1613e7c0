"""Referring video object segmentation data in their released layouts: Ref-DAVIS-17, Refer-YouTube-VOS, MeViS.

One :class:`~litelvlm.video.records.VideoExpression` per referring expression, its frames and ground-truth
masks loaded lazily.

Details: docs/video.md (``litelvlm.video.datasets``).
"""

from __future__ import annotations

from pathlib import Path

from ..errors import LiteLVLMError
from .checks import check_videos
from .meta import load_meta_expressions, meta_ids
from .records import MaskSource, NoMasks, PaletteMasks, RLEMasks, VideoExpression

REF_DAVIS, REF_YOUTUBE_VOS, MEVIS = "ref-davis17", "ref-youtube-vos", "mevis"

#: dataset -> split -> whether its ground-truth masks are public (False: on an evaluation server)
SPLITS: dict[str, dict[str, bool]] = {
    REF_DAVIS: {"train": True, "valid": True},
    REF_YOUTUBE_VOS: {"train": True, "valid": False, "test": False},
    MEVIS: {"train": True, "valid_u": True, "valid": False},
}


def split_videos(dataset: str, root: str | Path, split: str) -> tuple[Path, dict[str, dict], list[str]]:
    """(``split``'s meta file, its videos as :func:`~litelvlm.video.meta.load_meta_expressions` reads and
    checks them, the videos a run reads in order: the file's, or for Refer-YouTube-VOS ``valid`` those that
    ``meta_expressions/test`` does not list, sorted). The loaders and ``litelvlm plan`` read a split's meta
    files here, and only here."""
    root = Path(root)
    folder = root / split if dataset == MEVIS else root / "meta_expressions" / split
    meta_path = folder / "meta_expressions.json"
    videos = load_meta_expressions(meta_path)
    order = list(videos)
    if dataset == REF_YOUTUBE_VOS and split == "valid":
        test = load_meta_expressions(root / "meta_expressions" / "test" / "meta_expressions.json")
        order = sorted(v for v in videos if v not in test)
    return meta_path, videos, order


def _split_dirs(dataset: str, root: str | Path, split: str) -> tuple[Path, Path]:
    """Check ``dataset`` and ``split``; return (the root, the split's frame folder ``JPEGImages``)."""
    if dataset not in SPLITS:
        raise LiteLVLMError(f"unknown video dataset {dataset!r}; choose one of {', '.join(SPLITS)}")
    if split not in SPLITS[dataset]:
        raise LiteLVLMError(f"{dataset} has no split {split!r}; choose one of {', '.join(SPLITS[dataset])}")
    root = Path(root)
    if not root.is_dir():
        raise LiteLVLMError(f"{dataset} folder {str(root)!r} does not exist")
    return root, root / split / "JPEGImages"


def _require_dir(folder: Path, what: str) -> None:
    if not folder.is_dir():
        raise LiteLVLMError(f"{what} {str(folder)!r} does not exist (a partial download?)")


def _records(dataset: str, split: str, meta_path: Path, videos: dict[str, dict], order: list[str],
             image_dir: Path, masks: MaskSource, check_files: bool) -> list[VideoExpression]:
    """The records of ``order``'s videos, their folders checked (and every file where ``check_files``:
    :func:`litelvlm.video.checks.check_videos`)."""
    has_masks = SPLITS[dataset][split]
    out = []
    for video in order:
        _require_dir(image_dir / video, "frame folder")
        if isinstance(masks, PaletteMasks):
            _require_dir(masks.folder / video, "annotation folder")
        for exp_id, exp in videos[video]["expressions"].items():
            ids = (meta_ids(meta_path, video, exp_id, exp, "obj_id", has_masks, dataset == MEVIS),
                   meta_ids(meta_path, video, exp_id, exp, "anno_id", has_masks and dataset == MEVIS, True))
            rec = VideoExpression(dataset=dataset, split=split, video=video, exp_id=str(exp_id),
                                  sentence=exp["exp"], obj_ids=ids[0], frames=tuple(videos[video]["frames"]),
                                  frame_dir=image_dir / video,
                                  has_masks=has_masks, anno_ids=ids[1], masks=masks)
            out.append(rec)
    if check_files:
        check_videos(out)
    return out


def load_ref_davis(root: str | Path, split: str = "valid",
                   check_files: bool = False) -> list[VideoExpression]:
    """Ref-DAVIS-17 in ReferFormer's layout (``root/meta_expressions/<split>``, ``root/<split>/JPEGImages``
    and ``Annotations``), one record per expression, in the meta file's order."""
    root, image_dir = _split_dirs(REF_DAVIS, root, split)
    meta_path, videos, order = split_videos(REF_DAVIS, root, split)
    _require_dir(image_dir, "frame folder")
    ann_dir = root / split / "Annotations"
    _require_dir(ann_dir, "annotation folder")
    return _records(REF_DAVIS, split, meta_path, videos, order, image_dir, PaletteMasks(ann_dir), check_files)


def load_ref_youtube_vos(root: str | Path, split: str = "valid",
                         check_files: bool = False) -> list[VideoExpression]:
    """Refer-YouTube-VOS (``root/meta_expressions/<split>``, ``root/<split>/JPEGImages``,
    ``train/Annotations``); ``valid`` keeps the videos that ``meta_expressions/test`` does not list,
    sorted."""
    root, image_dir = _split_dirs(REF_YOUTUBE_VOS, root, split)
    meta_path, videos, order = split_videos(REF_YOUTUBE_VOS, root, split)
    _require_dir(image_dir, "frame folder")
    masks: MaskSource = NoMasks()
    if SPLITS[REF_YOUTUBE_VOS][split]:
        _require_dir(root / split / "Annotations", "annotation folder")
        masks = PaletteMasks(root / split / "Annotations")
    return _records(REF_YOUTUBE_VOS, split, meta_path, videos, order, image_dir, masks, check_files)


def load_mevis(root: str | Path, split: str = "valid_u", check_files: bool = False) -> list[VideoExpression]:
    """MeViS (``root/<split>/meta_expressions.json``, ``JPEGImages``, and ``mask_dict.json`` for ``train``
    and ``valid_u``), one record per expression, in the meta file's order."""
    root, image_dir = _split_dirs(MEVIS, root, split)
    meta_path, videos, order = split_videos(MEVIS, root, split)
    _require_dir(image_dir, "frame folder")
    masks: MaskSource = NoMasks()
    if SPLITS[MEVIS][split]:
        mask_path = root / split / "mask_dict.json"
        if not mask_path.is_file():
            raise LiteLVLMError(f"mask file {str(mask_path)!r} does not exist, but MeViS {split!r} has "
                                "public masks (a partial download?)")
        masks = RLEMasks(mask_path)
    return _records(MEVIS, split, meta_path, videos, order, image_dir, masks, check_files)


LOADERS = {REF_DAVIS: load_ref_davis, REF_YOUTUBE_VOS: load_ref_youtube_vos, MEVIS: load_mevis}


def load_video_expressions(dataset: str, root: str | Path, split: str,
                           check_files: bool = False) -> list[VideoExpression]:
    """Read ``split`` of ``dataset`` (one of :data:`SPLITS`) from its released folder ``root``."""
    if dataset not in LOADERS:
        raise LiteLVLMError(f"unknown video dataset {dataset!r}; choose one of {', '.join(LOADERS)}")
    return LOADERS[dataset](root, split, check_files)
