"""``validate``'s reference call and ``--compare-to``: the unpruned call's text ids, masks and mask logits
kept in ``OUT/reference.safetensors`` (a resumed run checks against them), and the agreement of a run's
masks with another validate folder's (:mod:`analysis.validate.compute`)."""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from litelvlm.errors import LiteLVLMError
from litelvlm.runs.io import atomic_path
from litelvlm.runs.records import inside

#: The columns of ``--compare-to``: agreement with another run's unpruned masks.
COMPARED = ["mask_iou_vs_compare", "logit_diff_vs_compare"]


def mask_agreement(masks, logits, compare: dict) -> dict:
    """IoU of ``masks`` (every [SEG]'s, together) with ``compare``'s unpruned masks (1.0 when both are empty),
    and the largest absolute difference of their mask logits."""
    other = compare["_masks"]
    union = int((masks | other).sum())
    iou = 1.0 if union == 0 else int((masks & other).sum()) / union
    return {COMPARED[0]: iou, COMPARED[1]: float((logits - compare["_logits"]).abs().max())}


def check_compare(compare: dict | None, reference: dict | None, folder: str | None) -> None:
    """Refuse a ``--compare-to`` folder whose prompt (text ids) is not this run's."""
    if compare is not None and reference is not None and not torch.equal(compare["_ids"], reference["_ids"]):
        raise LiteLVLMError(f"--compare-to {folder}: its prompt's token ids differ from this run's (another "
                            "image, sentences, seed or tokenizer)")


def load_compare(folder: str, prep, pipe) -> dict:
    """The reference of another validate folder (``--compare-to``), checked to be of the same prompt and
    mask size: a clear error naming the folder otherwise."""
    ref = load_reference(Path(folder), own=False)
    if ref is None:
        raise LiteLVLMError(f"--compare-to {folder}: no {REFERENCE_FILE} there (not a validate folder, or "
                            "its run did not start)")
    shape = (len(prep.sentences), *pipe.mask_shape(prep))
    if tuple(ref["_masks"].shape) != shape:
        raise LiteLVLMError(f"--compare-to {folder}: its masks are {tuple(ref['_masks'].shape)}, this run's "
                            f"would be {shape}: another image or sentences (same "
                            "--image-id, --seed and --max-sentences are needed)")
    return ref


REFERENCE_FILE = "reference.safetensors"


def save_reference(out: Path, reference: dict) -> None:
    """Keep the reference call's text ids, masks and mask logits, so that a resumed run (a full-size run
    spans hours) checks against them without calling ``none`` again."""
    with atomic_path(out / REFERENCE_FILE) as tmp:
        save_file({"ids": reference["_ids"].contiguous(), "masks": reference["_masks"].to(torch.uint8),
                   "logits": reference["_logits"].contiguous()}, str(tmp))


def load_reference(out: Path, own: bool = True) -> dict | None:
    """The reference kept by :func:`save_reference` (None: there is none yet). A damaged one (truncated,
    garbled, of another schema, a folder or a link) is removed with a warning when ``out`` is this run's
    folder (``own``: the reference call is made again), else a LiteLVLMError naming it."""
    path = out / REFERENCE_FILE
    if not os.path.lexists(path):
        return None
    problem = "is a link or a folder where the reference file should be"
    if not path.is_symlink() and path.is_file():
        try:
            t = load_file(str(path))
            ref = {"_ids": t["ids"], "_masks": t["masks"].bool(), "_logits": t["logits"]}
            if ref["_ids"].dtype.is_floating_point or ref["_logits"].shape[:1] != ref["_masks"].shape[:1]:
                raise ValueError("another schema")
            return ref
        except Exception:  # noqa: BLE001 - a damaged header or payload fails in many ways
            problem = "cannot be read as a reference (truncated, garbled or of another schema)"
    if not own:
        raise LiteLVLMError(f"--compare-to {out}: {path} {problem}")
    logging.getLogger(__name__).warning("%s %s: removed, and the reference call is made again", path, problem)
    inside(out, path)
    shutil.rmtree(path) if path.is_dir() and not path.is_symlink() else path.unlink()
    return None
