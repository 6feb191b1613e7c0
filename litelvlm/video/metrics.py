"""J&F of video object segmentation, as the official DAVIS 2017 evaluation computes it.

Official code: davisvideochallenge/davis2017-evaluation @ ac7c43f (``davis2017/metrics.py`` and the files
beside it); transcribed and compared in ``tests/litelvlm/video/test_metrics.py``.

Details: docs/video.md (``litelvlm.video.metrics``).
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import cv2
import numpy as np
from numpy.typing import ArrayLike
from scipy.optimize import linear_sum_assignment
from skimage.morphology import disk as skimage_disk

BOUND_TH = 0.008
TASKS = ("unsupervised", "semi-supervised")
MAX_PROPOSALS = 20  # the unsupervised task's limit on predicted objects (evaluation.py L44)
VOID_LABEL = 255


def _frames(pred: ArrayLike, gt: ArrayLike,
            void: ArrayLike | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Boolean masks (nonzero is foreground) and the pixels to count (not void), shapes checked."""
    p, g = np.asarray(pred).astype(bool), np.asarray(gt).astype(bool)
    if p.shape != g.shape or p.ndim < 2:
        raise ValueError(f"prediction {p.shape} and ground truth {g.shape} must be (..., H, W) of one shape")
    if void is None:
        return p, g, np.ones(p.shape[-2:], bool)
    keep = ~np.asarray(void).astype(bool)
    if keep.shape != p.shape[-keep.ndim:]:
        raise ValueError(f"void pixels {keep.shape} do not match the masks {p.shape}")
    return p, g, keep


def region_similarity_frames(pred: ArrayLike, gt: ArrayLike, void: ArrayLike | None = None) -> np.ndarray:
    """J of each (H, W) frame of (..., H, W) masks: intersection over union outside void, 1 on an empty
    union."""
    p, g, keep = _frames(pred, gt, void)
    inter = np.sum(p & g & keep, axis=(-2, -1))
    union = np.sum((p | g) & keep, axis=(-2, -1))
    with np.errstate(divide="ignore", invalid="ignore"):
        j = inter / union
    return np.where(union == 0, 1.0, j)


def region_similarity(pred: ArrayLike, gt: ArrayLike, void: ArrayLike | None = None) -> float:
    """J of one (H, W) frame (``db_eval_iou``)."""
    if np.ndim(pred) != 2:
        raise ValueError("region_similarity takes one (H, W) frame; region_similarity_frames takes more")
    return float(region_similarity_frames(pred, gt, void))


def boundary_map(mask: ArrayLike) -> np.ndarray:
    """``_seg2bmap`` on the last two axes: a pixel is boundary where it differs from its east, south or
    south-east neighbour (the last row and column compare along themselves; the corner is never boundary)."""
    seg = np.asarray(mask).astype(bool)
    if seg.ndim < 2 or 0 in seg.shape[-2:]:
        raise ValueError(f"masks must be (..., H, W) with at least one pixel, not {seg.shape}")
    e, s, se = np.zeros_like(seg), np.zeros_like(seg), np.zeros_like(seg)
    e[..., :, :-1] = seg[..., :, 1:]
    s[..., :-1, :] = seg[..., 1:, :]
    se[..., :-1, :-1] = seg[..., 1:, 1:]
    b = (seg ^ e) | (seg ^ s) | (seg ^ se)
    b[..., -1, :] = seg[..., -1, :] ^ e[..., -1, :]
    b[..., :, -1] = seg[..., :, -1] ^ s[..., :, -1]
    b[..., -1, -1] = False
    return b


def boundary_tolerance(shape: tuple[int, int], bound_th: float = BOUND_TH) -> float:
    """The dilation radius in pixels: ``bound_th`` when >= 1, else ``ceil(bound_th * norm((H, W)))``."""
    if bound_th < 0:
        raise ValueError(f"bound_th must be >= 0, not {bound_th}")
    return float(bound_th) if bound_th >= 1 else float(np.ceil(bound_th * np.linalg.norm(shape)))


def disk(radius: float) -> np.ndarray:
    """The footprint of the official F: scikit-image's ``disk(radius)`` as uint8 (``metrics.py`` L84, L87,
    L89)."""
    return skimage_disk(radius).astype(np.uint8)


def dilate(bmap: ArrayLike, kernel: ArrayLike) -> np.ndarray:
    """``cv2.dilate`` of one (H, W) map by ``kernel`` (both as uint8, OpenCV's defaults: the official call,
    L87, L89), as a boolean map."""
    b, k = np.asarray(bmap), np.asarray(kernel)
    if b.ndim != 2 or k.ndim != 2 or 0 in k.shape or 0 in b.shape:
        raise ValueError(
            f"dilate takes an (H, W) map and a non-empty 2-D kernel, not {b.shape} and {k.shape}")
    return cv2.dilate(b.astype(np.uint8), k.astype(np.uint8)).astype(bool)


def _boundaries(masks: np.ndarray, keep: np.ndarray, kernel: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Boundary maps of (T, H, W) masks with the void cleared, and their dilations."""
    bmaps = boundary_map(masks & keep)
    return bmaps, np.stack([dilate(b, kernel) for b in bmaps]) if len(bmaps) else bmaps.copy()


def _f_from_boundaries(fg: tuple[np.ndarray, np.ndarray], gt: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """F of each frame from the prediction's and the ground truth's (boundary, dilated boundary)."""
    (fg_b, fg_dil), (gt_b, gt_dil) = fg, gt
    n_fg, n_gt = fg_b.sum(axis=(-2, -1)), gt_b.sum(axis=(-2, -1))
    fg_match, gt_match = (fg_b & gt_dil).sum(axis=(-2, -1)), (gt_b & fg_dil).sum(axis=(-2, -1))
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.where(n_fg == 0, 1.0, np.where(n_gt == 0, 0.0, fg_match / n_fg))
        recall = np.where(n_gt == 0, 1.0, np.where(n_fg == 0, 0.0, gt_match / n_gt))
        f = 2 * precision * recall / (precision + recall)
    return np.where(precision + recall == 0, 0.0, f)


def boundary_f_frames(pred: ArrayLike, gt: ArrayLike, void: ArrayLike | None = None,
                      bound_th: float = BOUND_TH) -> np.ndarray:
    """F of each (H, W) frame of (..., H, W) masks (``db_eval_boundary``), void pixels cleared first."""
    p, g, keep = _frames(pred, gt, void)
    lead, hw = p.shape[:-2], p.shape[-2:]
    kernel = disk(boundary_tolerance(hw, bound_th))
    keep = np.broadcast_to(keep, p.shape).reshape(-1, *hw)
    fg = _boundaries(p.reshape(-1, *hw), keep, kernel)
    gt_ = _boundaries(g.reshape(-1, *hw), keep, kernel)
    return _f_from_boundaries(fg, gt_).reshape(lead)


def boundary_f(pred: ArrayLike, gt: ArrayLike, void: ArrayLike | None = None,
               bound_th: float = BOUND_TH) -> float:
    """F of one (H, W) frame (``f_measure``)."""
    if np.ndim(pred) != 2:
        raise ValueError("boundary_f takes one (H, W) frame; boundary_f_frames takes more")
    return float(boundary_f_frames(pred, gt, void, bound_th))


def frame_statistics(values: ArrayLike) -> tuple[float, float, float]:
    """``db_statistics`` of one object's per-frame values: NaN-skipping (mean, share > 0.5, first quarter's
    mean - last quarter's); the quarters' ends are uint8 and wrap past 255 frames, as the official ones."""
    v = np.asarray(values, dtype=float)
    if v.ndim != 1:
        raise ValueError(f"per-frame values must be 1-D, not {v.shape}")
    if v.size == 0:
        return float("nan"), float("nan"), float("nan")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=RuntimeWarning)
        mean, recall = np.nanmean(v), np.nanmean(v > 0.5)
        ids = (np.round(np.linspace(1, len(v), 5) + 1e-10) - 1).astype(np.uint8)
        decay = np.nanmean(v[ids[0]:ids[1] + 1]) - np.nanmean(v[ids[3]:ids[4] + 1])
    return float(mean), float(recall), float(decay)


def _objects(masks: ArrayLike, name: str) -> np.ndarray:
    """(N, T, H, W) boolean object masks."""
    m = np.asarray(masks).astype(bool)
    if m.ndim != 4:
        raise ValueError(f"{name} must be (objects, frames, H, W), not {m.shape}")
    return m


def _trim(pred: np.ndarray) -> np.ndarray:
    """Drop trailing empty objects: the official reader counts objects up to the largest label present."""
    # 0 objects too
    present = np.flatnonzero(pred.reshape(len(pred), int(np.prod(pred.shape[1:]))).any(axis=1))
    return pred[: present[-1] + 1] if present.size else pred[:0]


def _pad(pred: np.ndarray, n: int) -> np.ndarray:
    """Empty objects appended up to ``n`` objects (``_evaluate_*``'s zero padding)."""
    if len(pred) >= n:
        return pred
    return np.concatenate([pred, np.zeros((n - len(pred), *pred.shape[1:]), bool)])


def _pair_scores(gt, pred, keep, bound_th, pairs) -> tuple[np.ndarray, np.ndarray]:
    """J and F of the (predicted, ground-truth) index pairs: two (M, N, T) arrays, zero elsewhere."""
    m, n, t = len(pred), len(gt), gt.shape[1]
    j, f = np.zeros((m, n, t)), np.zeros((m, n, t))
    kernel = disk(boundary_tolerance(gt.shape[-2:], bound_th))
    keep = np.broadcast_to(keep, gt.shape[1:])
    gt_bounds, fg_bounds = {}, {}
    for jj, ii in pairs:
        if ii not in gt_bounds:
            gt_bounds[ii] = _boundaries(gt[ii], keep, kernel)
        if jj not in fg_bounds:
            fg_bounds[jj] = _boundaries(pred[jj], keep, kernel)
        j[jj, ii] = region_similarity_frames(pred[jj], gt[ii], ~keep)
        f[jj, ii] = _f_from_boundaries(fg_bounds[jj], gt_bounds[ii])
    return j, f


def sequence_scores(gt: ArrayLike, pred: ArrayLike, void: ArrayLike | None = None, task: str = "unsupervised",
                    bound_th: float = BOUND_TH) -> tuple[np.ndarray, np.ndarray]:
    """Per-frame J and F of one sequence's ground-truth objects, (N, T') each, as ``DAVISEvaluation`` scores
    ``task``: gt (N, T, H, W) and pred (M, T, H, W) object masks (object k has label k + 1), void (T, H,
    W)."""
    if task not in TASKS:
        raise ValueError(f"task must be one of {TASKS}, not {task!r}")
    gt, pred = _objects(gt, "gt"), _objects(pred, "pred")
    if gt.shape[1:] != pred.shape[1:]:
        raise ValueError(f"gt {gt.shape} and pred {pred.shape} differ in frames or size")
    if task == "semi-supervised":
        gt, pred, void = gt[:, 1:-1], pred[:, 1:-1], None  # evaluation.py L84-90: no void in this task
    pred = _trim(pred)
    limit = len(gt) if task == "semi-supervised" else MAX_PROPOSALS
    if len(pred) > limit:
        raise ValueError(f"{len(pred)} predicted objects, more than the {task} task allows ({limit})")
    pred = _pad(pred, len(gt))
    keep = np.ones(gt.shape[-2:], bool) if void is None else ~np.asarray(void).astype(bool)
    if keep.shape not in (gt.shape[1:], gt.shape[2:]):
        raise ValueError(f"void pixels {keep.shape} do not match the frames {gt.shape[1:]}")
    if task == "semi-supervised":
        diagonal = np.arange(len(gt))
        j, f = _pair_scores(gt, pred, keep, bound_th, zip(diagonal, diagonal))
        return j[diagonal, diagonal], f[diagonal, diagonal]
    j, f = _pair_scores(gt, pred, keep, bound_th, np.ndindex(len(pred), len(gt)))
    rows, cols = linear_sum_assignment(-((np.mean(j, axis=2) + np.mean(f, axis=2)) / 2))
    return j[rows, cols], f[rows, cols]  # in the order of the predicted objects, as the official code


@dataclass(frozen=True)
class Summary:
    """The official global table (``evaluation_method.py`` L42-45) and each object's J and F means."""

    jf_mean: float
    j_mean: float
    j_recall: float
    j_decay: float
    f_mean: float
    f_recall: float
    f_decay: float
    per_object: dict[str, tuple[float, float]] = field(default_factory=dict)

    def row(self) -> dict[str, float]:
        """The global numbers under the official column names."""
        return {"J&F-Mean": self.jf_mean, "J-Mean": self.j_mean, "J-Recall": self.j_recall,
                "J-Decay": self.j_decay, "F-Mean": self.f_mean, "F-Recall": self.f_recall,
                "F-Decay": self.f_decay}


def summarize(objects: Mapping[str, tuple[ArrayLike, ArrayLike]]) -> Summary:
    """Per object the statistics of its per-frame (J, F); globally their means over objects and
    J&F = (J-Mean + F-Mean) / 2 (``evaluate`` L91-104, ``evaluation_method.py`` L43-45)."""
    stats = {name: (frame_statistics(j), frame_statistics(f)) for name, (j, f) in objects.items()}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=RuntimeWarning)  # no objects: NaN, as np.mean of []
        # one 1-D mean per column, in object order, as the official lists are averaged
        (jm, jr, jd), (fm, fr, fd) = ([np.mean([s[m][k] for s in stats.values()]) for k in range(3)]
                                      for m in range(2))
    return Summary(float((jm + fm) / 2.0), float(jm), float(jr), float(jd), float(fm), float(fr), float(fd),
                   {name: (s[0][0], s[1][0]) for name, s in stats.items()})


def evaluate(sequences: Iterable[tuple[str, ArrayLike, ArrayLike, ArrayLike | None]],
             task: str = "unsupervised", bound_th: float = BOUND_TH) -> Summary:
    """J&F of a dataset of ``(name, gt, pred, void)`` sequences (see :func:`sequence_scores`); the
    objects are named ``{name}_{k}``, k = 1..N, in the order the official code scores them."""
    objects = {}
    for name, gt, pred, void in sequences:
        j, f = sequence_scores(gt, pred, void, task, bound_th)
        objects.update({f"{name}_{k + 1}": (j[k], f[k]) for k in range(len(j))})
    return summarize(objects)


def gt_objects(labels: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """(N, T, H, W) object masks and the (T, H, W) void of DAVIS label maps (T, H, W): label 255 is void,
    N the largest label of the FIRST frame (``DAVIS.get_all_masks``)."""
    lab = np.asarray(labels)
    if lab.ndim != 3 or len(lab) == 0:
        raise ValueError(f"label maps must be (T, H, W) with T >= 1, not {lab.shape}")
    void = lab == VOID_LABEL
    lab = np.where(void, 0, lab)
    ids = np.arange(1, int(lab[0].max()) + 1)
    return lab[None] == ids[:, None, None, None], void


def pred_objects(labels: ArrayLike) -> np.ndarray:
    """(M, T, H, W) object masks of predicted label maps (T, H, W), M the largest label of any frame
    (``Results.read_masks``; no void label in predictions)."""
    lab = np.asarray(labels)
    if lab.ndim != 3:
        raise ValueError(f"label maps must be (T, H, W), not {lab.shape}")
    ids = np.arange(1, int(lab.max(initial=0)) + 1)
    return lab[None] == ids[:, None, None, None]


def mevis_scores(gt: ArrayLike, pred: ArrayLike, bound_th: float = BOUND_TH) -> tuple[float, float]:
    """One MeViS expression's (J, F): means over all (T, H, W) frames, no void (``eval_mevis.py`` L51-52);
    gt is the union of the referred objects' masks."""
    if np.ndim(gt) != 3:
        raise ValueError(f"one expression's masks are (T, H, W), not {np.shape(gt)}")
    return (float(region_similarity_frames(pred, gt).mean()),
            float(boundary_f_frames(pred, gt, bound_th=bound_th).mean()))


def mevis_summary(scores: Mapping[str, tuple[float, float]]) -> tuple[float, float, float]:
    """(J, F, J&F) of MeViS expressions' (J, F): means over expressions (``eval_mevis.py`` L89-94); an
    expression whose video has no prediction counts as (0, 0) there (L29-32)."""
    j = float(np.mean([s[0] for s in scores.values()]))
    f = float(np.mean([s[1] for s in scores.values()]))
    return j, f, (j + f) / 2
