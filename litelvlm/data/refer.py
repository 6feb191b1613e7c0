"""REFER-format loading (RefCOCO, RefCOCO+, RefCOCOg) and plain COCO instances, one record per sentence.

A REFER folder holds ``refs(<split_by>).p`` and ``instances.json`` (the official download
keeps them in ``<root>/<dataset>/``; both layouts are accepted). Images come from a
separate folder (COCO ``train2014`` for the official sets). Masks are decoded with
pycocotools, and the polygon parts of one object are MERGED (a union), never summed: the
original REFER code summed them, so overlapping parts came out with value 2.
"""

from __future__ import annotations

import logging
import pickle
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageOps

from ..errors import LiteLVLMError
from ..refer_layout import SPLITS_BY, find_refer_file
from ..runs.exclusions import Exclusions
from ..runs.io import read_json_file
from .resize_cap import SOURCE_KEY
from .segmentation import check_segmentation, decode_segmentation, polygons_outside

log = logging.getLogger(__name__)



@dataclass(frozen=True)
class ReferRecord:
    """One referring sentence with its image and referent (ids as in the REFER files)."""

    image_path: Path
    image_id: int
    ref_id: int
    ann_id: int
    sent_id: int
    sentence: str
    category: str
    category_id: int
    split: str
    height: int
    width: int
    segmentation: Any = field(default=None, repr=False, compare=False)
    bbox: tuple[float, float, float, float] | None = field(default=None, repr=False, compare=False)
    #: position of the sentence in the REFER file (refs in file order, sentences in their ref's
    #: order): the order GLaMM's evaluation lists an image's sentences in
    order: int = field(default=0, repr=False, compare=False)
    #: the instances file the annotation comes from (None for a record made in code)
    source: Path | None = field(default=None, repr=False, compare=False)

    def mask(self, parts: str = "union") -> np.ndarray:
        """The referent mask (H, W), decoded with pycocotools: bool with the polygon parts merged
        (``parts="union"``), or uint8 part counts as the official REFER code sums them (``"sum"``).
        A segmentation that cannot be decoded, or decodes to another size, is a :class:`LiteLVLMError`
        naming the annotation (an empty or degenerate polygon is an empty mask, not an error)."""
        try:
            m = decode_segmentation(self.segmentation, self.height, self.width, parts)
        except Exception as e:  # None, garbage RLE counts, a type pycocotools refuses
            raise LiteLVLMError(bad_segmentation(self.source, self.ann_id, self.image_id, e)) from e
        if m.shape != (self.height, self.width):
            raise LiteLVLMError(f"annotation {self.ann_id} (image {self.image_id}) decodes to a {m.shape[1]} "
                                f"x {m.shape[0]} mask but its image is {self.width} x {self.height} (width x "
                                "height)")
        return m

    def image(self, exif_transpose: bool = True) -> Image.Image:
        """The image as RGB (see :func:`open_rgb`); raises :class:`LiteLVLMError` naming the path if
        it is missing or unreadable, or if its size is not the annotations' (``width`` x ``height``)."""
        im = open_rgb(self.image_path, exif_transpose)
        if im.size != (self.width, self.height):
            tag = exif_orientation(self.image_path)
            why = (f"; its EXIF orientation tag is {tag}, which the decoding "
                   f"{'applied' if exif_transpose else 'ignored'}" if tag not in (None, 1) else "")
            raise LiteLVLMError(f"image {str(self.image_path)!r} decodes to {im.width} x {im.height} (width "
                                f"x height) but its annotations are for {self.width} x {self.height}{why}: "
                                "its masks would not fit its predictions")
        return im


#: The EXIF tag that says how a camera was held (1 = as stored; 2-8 = mirrored and/or rotated).
EXIF_ORIENTATION = 0x0112


def exif_orientation(path: str | Path) -> int | None:
    """The EXIF orientation tag of an image file (None without one or if unreadable)."""
    try:
        with Image.open(path) as im:
            return im.getexif().get(EXIF_ORIENTATION)
    except Exception:  # any unreadable file simply has no tag to report
        return None


def open_rgb(path: str | Path, exif_transpose: bool = True) -> Image.Image:
    """Open an image fully as RGB, or raise :class:`LiteLVLMError` naming the path.

    ``exif_transpose`` (default) turns the image as its EXIF orientation tag says, as the official
    ``cv2.imread`` does; ``False`` keeps the stored pixel layout (``PIL.Image.open`` alone).
    """
    path = Path(path)
    if not path.is_file():
        raise LiteLVLMError(f"image {str(path)!r} does not exist")
    try:
        with Image.open(path) as im:
            im.load()
            if im.mode in WIDE_MODES:
                log.warning("image %r has %s samples (mode %s); it is decoded as PIL's convert('RGB') does, "
                            "which clips every value above 255", str(path), WIDE_MODES[im.mode], im.mode)
            if exif_transpose:
                im = ImageOps.exif_transpose(im)
            rgb = im.convert("RGB")
            # messages about this image name its file (resize_cap.image_label)
            rgb.info[SOURCE_KEY] = str(path)
            return rgb
    # PIL raises many types for truncated / corrupt / oversized (decompression bomb) files
    except Exception as e:
        raise LiteLVLMError(f"image {str(path)!r} could not be read: {e}") from e


#: PIL modes with more than 8 bits per sample, which ``convert("RGB")`` clips to 0..255
WIDE_MODES = {"I;16": "16-bit", "I;16L": "16-bit", "I;16B": "16-bit", "I;16N": "16-bit",
              "I": "32-bit integer", "F": "32-bit float"}


def _find(folder: Path, name: str, dataset: str) -> Path:
    return find_refer_file(folder, name, dataset)


def _load_instances(path: Path) -> dict:
    data = read_json_file(path, "instances file")
    for key in ("images", "annotations", "categories"):
        if not isinstance(data, dict) or not isinstance(data.get(key), list):
            raise LiteLVLMError(f"instances file {str(path)!r} has no {key!r} list (not COCO instances "
                                "format)")
    return data


def _image_dir(image_dir: str | Path | None, default: Path) -> Path:
    folder = Path(image_dir) if image_dir is not None else default
    if not folder.is_dir():
        raise LiteLVLMError(f"image folder {str(folder)!r} does not exist")
    return folder


class _BuiltinsOnly(pickle.Unpickler):
    """An unpickler that builds plain containers and scalars only: the REFER files hold nothing else,
    and a class or function reference in a pickle is how a crafted file runs code."""

    def find_class(self, module: str, name: str):
        raise pickle.UnpicklingError(f"it refers to {module}.{name}; a REFER refs file holds only built-in "
                                     "types (lists, dicts, strings, numbers), so it was not loaded")


def load_refs(path: str | Path) -> list[dict]:
    """The refs list of a REFER ``refs(<split_by>).p`` file, loaded with a restricted unpickler; a
    truncated, malformed or code-carrying file is a ``LiteLVLMError`` naming it."""
    try:
        with open(path, "rb") as f:
            refs = _BuiltinsOnly(f).load()
    except UnicodeDecodeError as e:  # a byte string that is not ASCII (Python 2) or not UTF-8 (Python 3)
        raise LiteLVLMError(f"refs file {str(path)!r} holds a string that is not {e.encoding.upper()} text: "
                            f"byte {e.object[e.start]:#04x} at offset {e.start} of the string cannot be "
                            f"decoded ({e.reason}); REFER files hold ASCII byte strings or unicode "
                            "strings") from None
    except Exception as e:  # truncated, not a pickle, or refused by find_class
        raise LiteLVLMError(f"refs file {str(path)!r} could not be loaded: {e}") from e
    if not isinstance(refs, list) or not all(isinstance(r, dict) for r in refs):
        raise LiteLVLMError(f"refs file {str(path)!r} does not hold a list of refs (dicts)")
    if not refs:
        raise LiteLVLMError(f"refs file {str(path)!r} holds no refs")
    for i, r in enumerate(refs):
        missing = [k for k in REF_KEYS if k not in r]
        sentences = r.get("sentences")
        if not missing and (not isinstance(sentences, list) or not all(
                isinstance(s, dict) and "sent_id" in s and ("sent" in s or "raw" in s) for s in sentences)):
            missing = ["sentences as a list of {sent_id, sent} dicts"]
        if missing:
            raise LiteLVLMError(f"refs file {str(path)!r}: ref #{i} (ref_id {r.get('ref_id', '?')}) has no "
                                f"{', '.join(map(repr, missing))}")
    _refuse_duplicates(path, "ref_id", [r["ref_id"] for r in refs])
    _refuse_duplicates(path, "sent_id", [s["sent_id"] for r in refs for s in r["sentences"]])
    return refs


#: the fields every ref of a REFER refs file has (and that the loaders read)
REF_KEYS = ("ref_id", "image_id", "ann_id", "category_id", "split", "sentences")


def _refuse_duplicates(path: str | Path, what: str, ids: list) -> None:
    """A ``LiteLVLMError`` naming the file and the first id that occurs twice: two entries under one id
    would make every table keyed by it ambiguous."""
    seen: set = set()
    for i in ids:
        if i in seen:
            raise LiteLVLMError(f"{str(path)!r} holds {what} {i!r} twice; ids must be unique")
        seen.add(i)


def load_refer(refer_dir: str | Path, image_dir: str | Path | None, dataset: str = "refcoco",
               split_by: str = "unc", split: str = "val") -> list[ReferRecord]:
    """Load one REFER split as records, one per sentence, sorted by (image_id, ref_id, sent_id).

    ``split="all"`` keeps every split. ``image_dir=None`` means ``<refer_dir>/images``.
    """
    refer_dir = Path(refer_dir)
    if not refer_dir.is_dir():
        raise LiteLVLMError(f"--refer-dir {str(refer_dir)!r} does not exist")
    if dataset not in SPLITS_BY:
        raise LiteLVLMError(f"unknown dataset {dataset!r}; choose one of {', '.join(SPLITS_BY)}")
    if split_by not in SPLITS_BY[dataset]:
        log.warning("%s is officially split by %s, not %r", dataset, "/".join(SPLITS_BY[dataset]), split_by)
    refs_path = _find(refer_dir, f"refs({split_by}).p", dataset)
    inst_path = _find(refer_dir, "instances.json", dataset)
    images_root = _image_dir(image_dir, refer_dir / "images")
    refs = load_refs(refs_path)
    data = _load_instances(inst_path)
    _refuse_duplicates(inst_path, "image id", [im["id"] for im in data["images"]])
    _refuse_duplicates(inst_path, "annotation id", [a["id"] for a in data["annotations"]])
    images = {im["id"]: im for im in data["images"]}
    anns = {a["id"]: a for a in data["annotations"]}
    cats = {c["id"]: c["name"] for c in data["categories"]}
    available = sorted({r["split"] for r in refs})
    if split != "all" and split not in available:
        raise LiteLVLMError(f"split {split!r} not in {str(refs_path)!r}; available: {', '.join(available)} "
                            "or 'all'")
    out, checked, left_out, total, clipped = [], set(), Exclusions("sentences"), 0, []
    for pos, ref in enumerate(refs):
        if split != "all" and ref["split"] != split:
            continue
        total += len(ref["sentences"])
        ann = anns.get(ref["ann_id"])
        im = images.get(ref["image_id"])
        if ann is None or im is None:
            log.warning("ref %s names a missing annotation/image; skipped", ref.get("ref_id"))
            left_out.add(f"the ref names an {'annotation' if ann is None else 'image'} that {inst_path.name} "
                         "lacks",
                         f"ref {ref.get('ref_id')} (annotation {ref['ann_id']}, image {ref['image_id']})",
                         len(ref["sentences"]))
            continue
        _require_fields(inst_path, "annotation", ann, ("segmentation",))
        _require_fields(inst_path, "image", im, ("file_name", "height", "width"))
        _check_annotation(inst_path, ann, im, checked, clipped)
        for j, s in enumerate(ref["sentences"]):
            out.append(ReferRecord(
                image_path=images_root / im["file_name"], image_id=int(ref["image_id"]),
                ref_id=int(ref["ref_id"]), ann_id=int(ref["ann_id"]), sent_id=int(s["sent_id"]),
                sentence=str(s.get("sent", s.get("raw", ""))), category=cats.get(ref["category_id"], "?"),
                category_id=int(ref["category_id"]), split=str(ref["split"]),
                height=int(im["height"]), width=int(im["width"]),
                segmentation=ann["segmentation"], bbox=tuple(ann.get("bbox", ())) or None,
                order=pos * 10_000 + j, source=inst_path))
    left_out.announce(total, log)
    announce_clipped(inst_path, clipped, len(checked))
    out.sort(key=lambda r: (r.image_id, r.ref_id, r.sent_id))
    return out


def bad_segmentation(source: str | Path | None, ann_id: Any, image_id: Any, cause: Exception | str) -> str:
    """The one-line message for an annotation whose segmentation cannot be decoded, naming its instances file
    (when known), the annotation, its image and the cause."""
    where = f"instances file {str(source)!r}: " if source is not None else ""
    return f"{where}annotation {ann_id} (image {image_id}) has a segmentation that cannot be decoded: {cause}"


def _check_annotation(path: Path, ann: dict, im: dict, checked: set, clipped: list | None = None) -> None:
    """Refuse, before pycocotools ever sees it, an annotation whose segmentation or image size is unusable
    (:func:`~litelvlm.data.segmentation.check_segmentation`); ``checked`` holds the annotation ids done,
    ``clipped`` gets (annotation id, image id, polygons) for each annotation with polygons reaching outside
    its image."""
    if ann.get("id") in checked:
        return
    height, width = im.get("height"), im.get("width")
    try:
        check_segmentation(ann["segmentation"], height, width)
    except ValueError as e:
        raise LiteLVLMError(bad_segmentation(path, ann.get("id"), im.get("id"), e)) from None
    outside = polygons_outside(ann["segmentation"], height, width)
    if outside and clipped is not None:
        clipped.append((ann.get("id"), im.get("id"), outside))
    limit = Image.MAX_IMAGE_PIXELS
    if limit is not None and height * width > 2 * limit:
        raise LiteLVLMError(f"instances file {str(path)!r}: image {im.get('id')} is {width} x {height} "
                            f"(width x height), past the {2 * limit} pixels at which PIL refuses an image as "
                            "a decompression bomb")
    checked.add(ann.get("id"))


def announce_clipped(path: Path, clipped: list, total: int) -> str | None:
    """Say once (a warning on this module's log) how many polygons of the ``total`` annotations read reach
    outside their image, which pycocotools clips to it as the official REFER reader's decoding does; returns
    the line."""
    if not clipped:
        return None
    polygons = sum(n for _, _, n in clipped)
    shown = "; ".join(f"annotation {a} (image {i})" for a, i, _ in clipped[:3]) + (
        "; ..." if len(clipped) > 3 else "")
    line = (f"instances file {str(path)!r}: {polygons} polygon(s) of {len(clipped)} of {total} annotations "
            "reach outside their image and are clipped to it, as pycocotools decodes them for the official "
            f"reader: {shown}")
    log.warning(line)
    return line


def _require_fields(path: Path, kind: str, entry: dict, fields: tuple[str, ...]) -> None:
    """Refuse an entry of ``path`` that lacks a field the evaluation reads, naming the entry."""
    missing = [f for f in fields if f not in entry]
    if missing:
        raise LiteLVLMError(f"{path}: {kind} {entry.get('id')!r} has no {', '.join(missing)} field")


def load_coco_instances(instances_json: str | Path, image_dir: str | Path | None,
                        split: str = "val") -> list[ReferRecord]:
    """Load a COCO instances file as records whose sentence is the category name.

    ``ref_id`` and ``sent_id`` are the annotation id; crowd annotations are skipped.
    ``image_dir=None`` means the ``images`` folder beside the JSON file.
    """
    path = Path(instances_json)
    if not path.is_file():
        raise LiteLVLMError(f"instances file {str(path)!r} does not exist")
    data = _load_instances(path)
    images_root = _image_dir(image_dir, path.parent / "images")
    images = {im["id"]: im for im in data["images"]}
    cats = {c["id"]: c["name"] for c in data["categories"]}
    out, checked, left_out, clipped = [], set(), Exclusions("annotations"), []
    for a in data["annotations"]:
        if a.get("iscrowd", 0):
            left_out.add("crowd annotation (iscrowd 1)", f"annotation {a.get('id')} (image "
                         f"{a.get('image_id')})")
            continue
        im = images.get(a["image_id"])
        if im is None:
            left_out.add(f"its image is not in {path.name}", f"annotation {a.get('id')} (image "
                         f"{a.get('image_id')})")
            continue
        _require_fields(path, "annotation", a, ("segmentation",))
        _require_fields(path, "image", im, ("file_name", "height", "width"))
        _check_annotation(path, a, im, checked, clipped)
        name = cats.get(a["category_id"], "?")
        out.append(ReferRecord(
            image_path=images_root / im["file_name"], image_id=int(a["image_id"]), ref_id=int(a["id"]),
            ann_id=int(a["id"]), sent_id=int(a["id"]), sentence=name, category=name,
            category_id=int(a["category_id"]), split=split, height=int(im["height"]),
            width=int(im["width"]), segmentation=a["segmentation"], bbox=tuple(a.get("bbox", ())) or None,
            source=path))
    left_out.announce(len(data["annotations"]), log)
    announce_clipped(path, clipped, len(checked))
    out.sort(key=lambda r: (r.image_id, r.ref_id, r.sent_id))
    return out
