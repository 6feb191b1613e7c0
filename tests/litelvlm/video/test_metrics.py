"""J&F (``litelvlm.video.metrics``) against the official DAVIS 2017 evaluation: its own code, and a
transcription.

The official code itself: davisvideochallenge/davis2017-evaluation @ ac7c43fca936f9722837b7fbd337d284ba37004b,
imported from ``../shared/official/davis2017-evaluation``, and VideoGLaMM's copy of it (mbzuai-oryx/VideoGLaMM
@6b15b1e ``eval_referdavis_metrics.py``), from ``../shared/official/VideoGLaMM`` (the ``official`` fixture;
these tests skip only when ``../shared`` is absent): the metrics on single frames and stacks, and
``DAVISEvaluation.evaluate`` on a DAVIS folder and a results folder written as PNG files, both tasks.

The functions under "Official code, transcribed" follow the same commit statement by statement
(``davis2017/metrics.py``, ``davis2017/utils.py``, ``davis2017/evaluation.py``, ``davis2017/davis.py``,
``davis2017/results.py``, ``evaluation_method.py``), in numpy with OpenCV's ``cv2.dilate`` and scikit-image's
``disk`` as the official F calls them, so the sweeps also run where ``../shared`` is absent. The MeViS
protocol follows henghuiding/MeViS @ 7c0620b9dc0ab7802747957f221674f175c8a47b ``tools/eval_mevis.py`` (its
``tools/metrics.py`` is the DAVIS ``metrics.py`` unchanged). Ours must equal them exactly, on every mask shape
and edge case.
"""

from __future__ import annotations

import math
import sys
from types import SimpleNamespace

import cv2
import numpy as np
import pytest
from PIL import Image

from litelvlm.video import metrics as M

DAVIS_COMMIT = "ac7c43fca936f9722837b7fbd337d284ba37004b"
MEVIS_COMMIT = "7c0620b9dc0ab7802747957f221674f175c8a47b"


# ----------------------------------------------------------------------------------------------
# Official code, transcribed
# ----------------------------------------------------------------------------------------------

def db_eval_iou(annotation, segmentation, void_pixels=None):
    """davis2017/metrics.py L6-37."""
    assert annotation.shape == segmentation.shape, \
        f'Annotation({annotation.shape}) and segmentation:{segmentation.shape} dimensions do not match.'
    annotation = annotation.astype(bool)
    segmentation = segmentation.astype(bool)

    if void_pixels is not None:
        assert annotation.shape == void_pixels.shape, \
            f'Annotation({annotation.shape}) and void pixels:{void_pixels.shape} dimensions do not match.'
        void_pixels = void_pixels.astype(bool)
    else:
        void_pixels = np.zeros_like(segmentation)

    # Intersection between all sets
    inters = np.sum((segmentation & annotation) & np.logical_not(void_pixels), axis=(-2, -1))
    union = np.sum((segmentation | annotation) & np.logical_not(void_pixels), axis=(-2, -1))

    with np.errstate(divide="ignore", invalid="ignore"):  # the official run filters these warnings
        j = inters / union
    if j.ndim == 0:
        j = 1 if np.isclose(union, 0) else j
    else:
        j[np.isclose(union, 0)] = 1
    return j


def db_eval_boundary(annotation, segmentation, void_pixels=None, bound_th=0.008):
    """davis2017/metrics.py L40-54."""
    assert annotation.shape == segmentation.shape
    if void_pixels is not None:
        assert annotation.shape == void_pixels.shape
    if annotation.ndim == 3:
        n_frames = annotation.shape[0]
        f_res = np.zeros(n_frames)
        for frame_id in range(n_frames):
            void_pixels_frame = None if void_pixels is None else void_pixels[frame_id, :, :, ]
            f_res[frame_id] = f_measure(segmentation[frame_id, :, :, ], annotation[frame_id, :, :],
                                        void_pixels_frame, bound_th=bound_th)
    elif annotation.ndim == 2:
        f_res = f_measure(segmentation, annotation, void_pixels, bound_th=bound_th)
    else:
        raise ValueError(f'db_eval_boundary does not support tensors with {annotation.ndim} dimensions')
    return f_res


def f_measure(foreground_mask, gt_mask, void_pixels=None, bound_th=0.008):
    """davis2017/metrics.py L57-119."""
    assert np.atleast_3d(foreground_mask).shape[2] == 1
    if void_pixels is not None:
        void_pixels = void_pixels.astype(bool)
    else:
        void_pixels = np.zeros_like(foreground_mask).astype(bool)

    bound_pix = bound_th if bound_th >= 1 else \
        np.ceil(bound_th * np.linalg.norm(foreground_mask.shape))

    # Get the pixel boundaries of both masks
    fg_boundary = _seg2bmap(foreground_mask * np.logical_not(void_pixels))
    gt_boundary = _seg2bmap(gt_mask * np.logical_not(void_pixels))

    from skimage.morphology import disk

    # fg_dil = binary_dilation(fg_boundary, disk(bound_pix))
    fg_dil = cv2.dilate(fg_boundary.astype(np.uint8), disk(bound_pix).astype(np.uint8))
    # gt_dil = binary_dilation(gt_boundary, disk(bound_pix))
    gt_dil = cv2.dilate(gt_boundary.astype(np.uint8), disk(bound_pix).astype(np.uint8))

    # Get the intersection
    gt_match = gt_boundary * fg_dil
    fg_match = fg_boundary * gt_dil

    # Area of the intersection
    n_fg = np.sum(fg_boundary)
    n_gt = np.sum(gt_boundary)

    # % Compute precision and recall
    if n_fg == 0 and n_gt > 0:
        precision = 1
        recall = 0
    elif n_fg > 0 and n_gt == 0:
        precision = 0
        recall = 1
    elif n_fg == 0 and n_gt == 0:
        precision = 1
        recall = 1
    else:
        precision = np.sum(fg_match) / float(n_fg)
        recall = np.sum(gt_match) / float(n_gt)

    # Compute F measure
    if precision + recall == 0:
        F = 0
    else:
        F = 2 * precision * recall / (precision + recall)

    return F


def _seg2bmap(seg, width=None, height=None):
    """davis2017/metrics.py L122-178 (the resampling branch, never taken by the evaluation, omitted)."""
    seg = seg.astype(bool)
    seg[seg > 0] = 1

    assert np.atleast_3d(seg).shape[2] == 1

    width = seg.shape[1] if width is None else width
    height = seg.shape[0] if height is None else height

    h, w = seg.shape[:2]

    ar1 = float(width) / float(height)
    ar2 = float(w) / float(h)

    # the official ``assert not (...)``, as an ``if``: pytest's assertion rewriting would evaluate every
    # operand of this chained comparison, which plain Python short-circuits before ``h | float``
    if width > w | height > h | abs(ar1 - ar2) > 0.01:
        raise AssertionError("Cant convert %dx%d seg to %dx%d bmap." % (w, h, width, height))  # noqa: UP031

    e = np.zeros_like(seg)
    s = np.zeros_like(seg)
    se = np.zeros_like(seg)

    e[:, :-1] = seg[:, 1:]
    s[:-1, :] = seg[1:, :]
    se[:-1, :-1] = seg[1:, 1:]

    b = seg ^ e | seg ^ s | seg ^ se
    b[-1, :] = seg[-1, :] ^ e[-1, :]
    b[:, -1] = seg[:, -1] ^ s[:, -1]
    b[-1, -1] = 0

    assert w == width and h == height
    return b


def db_statistics(per_frame_values):
    """davis2017/utils.py L135-161 (warnings silenced as there)."""
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=RuntimeWarning)
        M_ = np.nanmean(per_frame_values)
        O = np.nanmean(per_frame_values > 0.5)  # noqa: E741

    N_bins = 4
    with warnings.catch_warnings():  # the uint8 cast and sum overflow past 255 frames
        warnings.simplefilter("ignore", category=RuntimeWarning)
        ids = np.round(np.linspace(1, len(per_frame_values), N_bins + 1) + 1e-10) - 1
        ids = ids.astype(np.uint8)

        D_bins = [per_frame_values[ids[i]:ids[i + 1] + 1] for i in range(0, 4)]

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=RuntimeWarning)
        D = np.nanmean(D_bins[0]) - np.nanmean(D_bins[3])

    return M_, O, D


def get_all_masks(labels):
    """davis2017/davis.py L83-98 with ``separate_objects_masks=True``; the frames as ``_get_all_elements``
    (L71-78) stacks them (a float array) and names them."""
    masks = np.zeros((len(labels), *labels[0].shape))
    for i, frame in enumerate(labels):
        masks[i, ...] = frame
    masks_id = [f"{i:05d}" for i in range(len(labels))]
    masks_void = np.zeros_like(masks)

    # Separate void and object masks
    for i in range(masks.shape[0]):
        masks_void[i, ...] = masks[i, ...] == 255
        masks[i, masks[i, ...] == 255] = 0

    num_objects = int(np.max(masks[0, ...]))
    tmp = np.ones((num_objects, *masks.shape))
    tmp = tmp * np.arange(1, num_objects + 1)[:, None, None, None]
    masks = (tmp == masks[None, ...])
    masks = masks > 0
    return masks, masks_void, masks_id


def read_masks(labels, masks_id):
    """davis2017/results.py L22-31 (``_read_mask`` of frame ``m`` is ``labels[int(m)]``)."""
    mask_0 = labels[int(masks_id[0])]
    masks = np.zeros((len(masks_id), *mask_0.shape))
    for ii, m in enumerate(masks_id):
        masks[ii, ...] = labels[int(m)]
    num_objects = int(np.max(masks))
    tmp = np.ones((num_objects, *masks.shape))
    tmp = tmp * np.arange(1, num_objects + 1)[:, None, None, None]
    masks = (tmp == masks[None, ...]) > 0
    return masks


def _evaluate_semisupervised(all_gt_masks, all_res_masks, all_void_masks, metric):
    """davis2017/evaluation.py L27-41 (``sys.exit`` raises SystemExit)."""
    if all_res_masks.shape[0] > all_gt_masks.shape[0]:
        sys.exit()
    elif all_res_masks.shape[0] < all_gt_masks.shape[0]:
        zero_padding = np.zeros((all_gt_masks.shape[0] - all_res_masks.shape[0], *all_res_masks.shape[1:]))
        all_res_masks = np.concatenate([all_res_masks, zero_padding], axis=0)
    j_metrics_res, f_metrics_res = np.zeros(all_gt_masks.shape[:2]), np.zeros(all_gt_masks.shape[:2])
    for ii in range(all_gt_masks.shape[0]):
        if 'J' in metric:
            j_metrics_res[ii, :] = db_eval_iou(all_gt_masks[ii, ...], all_res_masks[ii, ...], all_void_masks)
        if 'F' in metric:
            f_metrics_res[ii, :] = db_eval_boundary(all_gt_masks[ii, ...], all_res_masks[ii, ...],
                                                    all_void_masks)
    return j_metrics_res, f_metrics_res


def _evaluate_unsupervised(all_gt_masks, all_res_masks, all_void_masks, metric, max_n_proposals=20):
    """davis2017/evaluation.py L43-64."""
    from scipy.optimize import linear_sum_assignment
    if all_res_masks.shape[0] > max_n_proposals:
        sys.exit()
    elif all_res_masks.shape[0] < all_gt_masks.shape[0]:
        zero_padding = np.zeros((all_gt_masks.shape[0] - all_res_masks.shape[0], *all_res_masks.shape[1:]))
        all_res_masks = np.concatenate([all_res_masks, zero_padding], axis=0)
    j_metrics_res = np.zeros((all_res_masks.shape[0], all_gt_masks.shape[0], all_gt_masks.shape[1]))
    f_metrics_res = np.zeros((all_res_masks.shape[0], all_gt_masks.shape[0], all_gt_masks.shape[1]))
    for ii in range(all_gt_masks.shape[0]):
        for jj in range(all_res_masks.shape[0]):
            if 'J' in metric:
                j_metrics_res[jj, ii, :] = db_eval_iou(all_gt_masks[ii, ...], all_res_masks[jj, ...],
                                                       all_void_masks)
            if 'F' in metric:
                f_metrics_res[jj, ii, :] = db_eval_boundary(all_gt_masks[ii, ...], all_res_masks[jj, ...],
                                                            all_void_masks)
    if 'J' in metric and 'F' in metric:
        all_metrics = (np.mean(j_metrics_res, axis=2) + np.mean(f_metrics_res, axis=2)) / 2
    else:
        all_metrics = np.mean(j_metrics_res, axis=2) if 'J' in metric else np.mean(f_metrics_res, axis=2)
    row_ind, col_ind = linear_sum_assignment(-all_metrics)
    return j_metrics_res[row_ind, col_ind, :], f_metrics_res[row_ind, col_ind, :]


def davis_evaluate(sequences, task, metric=('J', 'F')):
    """davis2017/evaluation.py L66-110 over in-memory (ground-truth, result) label maps, then the global
    row of evaluation_method.py L39-45."""
    metrics_res = {'J': {"M": [], "R": [], "D": [], "M_per_object": {}},
                   'F': {"M": [], "R": [], "D": [], "M_per_object": {}}}
    for seq, (gt_labels, res_labels) in sequences.items():
        all_gt_masks, all_void_masks, all_masks_id = get_all_masks(gt_labels)
        if task == 'semi-supervised':
            all_gt_masks, all_masks_id = all_gt_masks[:, 1:-1, :, :], all_masks_id[1:-1]
        all_res_masks = read_masks(res_labels, all_masks_id)
        if task == 'unsupervised':
            j_metrics_res, f_metrics_res = _evaluate_unsupervised(all_gt_masks, all_res_masks, all_void_masks,
                                                                  metric)
        elif task == 'semi-supervised':
            j_metrics_res, f_metrics_res = _evaluate_semisupervised(all_gt_masks, all_res_masks, None, metric)
        for ii in range(all_gt_masks.shape[0]):
            seq_name = f'{seq}_{ii+1}'
            [JM, JR, JD] = db_statistics(j_metrics_res[ii])
            metrics_res['J']["M"].append(JM)
            metrics_res['J']["R"].append(JR)
            metrics_res['J']["D"].append(JD)
            metrics_res['J']["M_per_object"][seq_name] = JM
            [FM, FR, FD] = db_statistics(f_metrics_res[ii])
            metrics_res['F']["M"].append(FM)
            metrics_res['F']["R"].append(FR)
            metrics_res['F']["D"].append(FD)
            metrics_res['F']["M_per_object"][seq_name] = FM
    J, F = metrics_res['J'], metrics_res['F']
    final_mean = (np.mean(J["M"]) + np.mean(F["M"])) / 2.
    g_res = [final_mean, np.mean(J["M"]), np.mean(J["R"]), np.mean(J["D"]), np.mean(F["M"]), np.mean(F["R"]),
             np.mean(F["D"])]
    per_object = {k: (J["M_per_object"][k], F["M_per_object"][k]) for k in J["M_per_object"]}
    return g_res, per_object


def mevis_expression(gt_masks, pred_masks):
    """MeViS tools/eval_mevis.py L51-53 (``out_dict[exp_name] = [j, f]``)."""
    j = db_eval_iou(gt_masks, pred_masks).mean()
    f = db_eval_boundary(gt_masks, pred_masks).mean()
    return [j, f]


def mevis_summary(output_dict):
    """MeViS tools/eval_mevis.py L89-94."""
    j = [output_dict[x][0] for x in output_dict]
    f = [output_dict[x][1] for x in output_dict]
    return np.mean(j), np.mean(f), (np.mean(j) + np.mean(f)) / 2


# ----------------------------------------------------------------------------------------------
# Masks
# ----------------------------------------------------------------------------------------------

def random_mask(rng, h, w):
    """Noise of several densities, empty, full, one pixel, a one-pixel line, or an elliptic blob."""
    kind = rng.integers(0, 7)
    m = np.zeros((h, w), bool)
    if kind == 0:
        return rng.random((h, w)) < rng.choice([0.01, 0.2, 0.5, 0.95])
    if kind == 1:
        return m
    if kind == 2:
        return ~m
    if kind == 3:
        m[rng.integers(0, h), rng.integers(0, w)] = True
    elif kind == 4:
        if rng.random() < 0.5:
            m[rng.integers(0, h), rng.integers(0, w // 2 + 1):] = True
        else:
            m[rng.integers(0, h // 2 + 1):, rng.integers(0, w)] = True
    else:
        yy, xx = np.mgrid[:h, :w]
        cy, cx = rng.random() * h, rng.random() * w
        ry, rx = rng.random() * h / 2 + 0.5, rng.random() * w / 2 + 0.5
        m = ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1
    return m


SMALL_SHAPES = [(1, 1), (1, 2), (2, 1), (1, 9), (9, 1), (2, 2), (3, 3), (4, 4), (5, 8), (37, 53), (53, 37),
                (64, 64), (100, 7)]
BOUND_THS = [0.008, 0.001, 0.03, 0, 1, 2, 3, 1.5, 2.5, 3.7]


def _same(a, b):
    """Equal values, NaN equal to NaN (no tolerance)."""
    np.testing.assert_array_equal(np.asarray(a, float), np.asarray(b, float))


# ----------------------------------------------------------------------------------------------
# Tests
# ----------------------------------------------------------------------------------------------

def test_disk_and_dilation_are_the_libraries_calls():
    """The footprint and the dilation are scikit-image's ``disk`` and OpenCV's ``dilate`` themselves (the
    official calls, L84-89); OpenCV's default anchor (kh // 2, kw // 2) and border (pixels outside ignored)
    shown by hand."""
    from skimage.morphology import disk

    rng = np.random.default_rng(0)
    for radius in [0.0, 1.0, 2.0, 8.0, 18.0, 1.5, 2.5, 3.7]:
        kernel = disk(radius).astype(np.uint8)
        np.testing.assert_array_equal(M.disk(radius), kernel)
        for h, w in SMALL_SHAPES:
            b = rng.random((h, w)) < 0.05
            np.testing.assert_array_equal(M.dilate(b, kernel),
                                          cv2.dilate(b.astype(np.uint8), kernel).astype(bool))
    assert M.disk(1.0).tolist() == [[0, 1, 0], [1, 1, 1], [0, 1, 0]]
    assert M.disk(1.5).shape == (4, 4) and M.disk(2.5).shape == (6, 6)   # arange(-r, r + 1): an even side
    one = np.zeros((3, 4), bool)
    one[0, 0] = True
    # anchor (0, 1) of a 1 x 2 kernel: dst(y, x) = max(src(y, x - 1), src(y, x)), so a pixel grows to the
    # right
    assert np.argwhere(M.dilate(one, np.ones((1, 2)))).tolist() == [[0, 0], [0, 1]]
    assert np.argwhere(M.dilate(one, np.ones((2, 1)))).tolist() == [[0, 0], [1, 0]]
    assert M.dilate(one, M.disk(1.0)).sum() == 3                                  # the border adds nothing
    with pytest.raises(ValueError, match="non-empty 2-D kernel"):
        M.dilate(one, np.ones((0, 3)))


def test_opencv_and_scikit_image_wait_for_the_checks():
    """A refused ``eval-video`` loads neither library (the command checks its arguments before the metrics
    module, which imports both, loads); F loads both."""
    import subprocess
    from pathlib import Path

    code = ("import sys, numpy as np; from litelvlm.cli import main; rc = main(['eval-video', '--methods', "
            "'none']); print(rc, 'cv2' in sys.modules, 'skimage' in sys.modules); from litelvlm.video import "
            "metrics as M; M.boundary_f(np.eye(4), np.eye(4)); print('cv2' in sys.modules, 'skimage' in "
            "sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).resolve().parents[3])
    assert out.stdout.split() == ["2", "False", "False", "True", "True"]


def test_boundary_map_and_tolerance():
    rng = np.random.default_rng(2)
    for h, w in SMALL_SHAPES:
        for _ in range(20):
            seg = random_mask(rng, h, w)
            np.testing.assert_array_equal(M.boundary_map(seg), _seg2bmap(seg))
    stack = rng.random((3, 2, 9, 11)) < 0.3  # leading axes are frames
    np.testing.assert_array_equal(M.boundary_map(stack)[2, 1], _seg2bmap(stack[2, 1]))
    # one pixel: its boundary is the 2x2 block up and left of it (half a pixel towards the origin)
    one = np.zeros((4, 4), bool)
    one[1, 1] = True
    assert np.argwhere(M.boundary_map(one)).tolist() == [[0, 0], [0, 1], [1, 0], [1, 1]]
    # the radius: ceil(0.008 * sqrt(H^2 + W^2)), or bound_th itself from 1 up
    assert M.boundary_tolerance((480, 854)) == 8.0   # 0.008 * 979.65 = 7.84
    assert M.boundary_tolerance((1080, 1920)) == 18.0  # 0.008 * 2202.9 = 17.6
    assert M.boundary_tolerance((1, 1)) == 1.0 and M.boundary_tolerance((4, 4)) == 1.0
    assert M.boundary_tolerance((480, 854), 2.5) == 2.5 and M.boundary_tolerance((9, 9), 0) == 0.0
    for h, w in SMALL_SHAPES:
        assert M.boundary_tolerance((h, w)) == np.ceil(0.008 * np.linalg.norm((h, w)))


def test_j_and_f_equal_the_official_code_on_random_masks():
    rng = np.random.default_rng(3)
    for h, w in SMALL_SHAPES + [(480, 854)]:
        big = h * w > 100_000
        for _ in range(3 if big else 40):
            p, g = random_mask(rng, h, w), random_mask(rng, h, w)
            void = None if rng.random() < 0.4 else random_mask(rng, h, w)
            assert M.region_similarity(p, g, void) == db_eval_iou(g, p, void)
            for th in [0.008] if big else BOUND_THS:
                assert M.boundary_f(p, g, void, bound_th=th) == f_measure(p, g, void, bound_th=th), (h, w, th)


def test_edge_cases_return_the_official_values():
    empty, full = np.zeros((37, 53), bool), np.ones((37, 53), bool)
    dot = empty.copy()
    dot[18, 26] = True
    for p, g, void, j, f in [
        (empty, empty, None, 1.0, 1.0),   # nothing to find, nothing found
        (empty, dot, None, 0.0, 0.0),     # no predicted boundary: precision 1, recall 0
        (dot, empty, None, 0.0, 0.0),     # no true boundary: precision 0, recall 1
        (dot, dot, None, 1.0, 1.0),
        # a full mask has no boundary (the last row and column compare inward)
        (full, full, None, 1.0, 1.0),
        (full, dot, full, 1.0, 1.0),      # all void: an empty union, no boundary
    ]:
        assert M.region_similarity(p, g, void) == db_eval_iou(g, p, void) == j
        assert M.boundary_f(p, g, void) == f_measure(p, g, void) == f
    # one pixel predicted one pixel diagonally off, tolerance 1 (a cross): 3 of 4 boundary pixels match
    # each way, so F = 0.75 while J = 0
    a, b = np.zeros((4, 4), bool), np.zeros((4, 4), bool)
    a[1, 1], b[2, 2] = True, True
    assert M.region_similarity(a, b) == 0.0 and M.boundary_f(a, b) == 0.75 == f_measure(a, b)


def test_frame_functions_equal_the_official_stacked_calls():
    rng = np.random.default_rng(4)
    for t, h, w in [(5, 37, 53), (3, 1, 1), (4, 1, 9), (0, 6, 7)]:
        p = np.array([random_mask(rng, h, w) for _ in range(t)], bool).reshape(t, h, w)
        g = np.array([random_mask(rng, h, w) for _ in range(t)], bool).reshape(t, h, w)
        void = (rng.random((t, h, w)) < 0.1)
        for v in (None, void):
            _same(M.region_similarity_frames(p, g, v), db_eval_iou(g, p, v))
            _same(M.boundary_f_frames(p, g, v), db_eval_boundary(g, p, v))


def test_frame_statistics_equal_db_statistics():
    rng = np.random.default_rng(5)
    for n in list(range(0, 12)) + [50, 255, 256, 257, 300]:  # past 255 frames the uint8 bin ends wrap
        values = rng.random(n)
        if n > 2:
            values[rng.integers(0, n)] = np.nan
        _same(M.frame_statistics(values), db_statistics(values))


def _labels(rng, t, h, w, n, void=False, p_absent=0.2):
    """Label maps with ``n`` rectangular objects (later ones on top), sometimes absent, 255 void."""
    lab = np.zeros((t, h, w), np.uint8)
    for f in range(t):
        for k in range(1, n + 1):
            if rng.random() < p_absent:
                continue
            y, x = rng.integers(0, h), rng.integers(0, w)
            lab[f, max(0, y - rng.integers(0, h // 2 + 1)): y + 1,
                max(0, x - rng.integers(0, w // 2 + 1)): x + 1] = k
        if void:
            lab[f][rng.random((h, w)) < 0.05] = 255
    return lab


def _dataset(rng, task, n_seq):
    """Random sequences as label maps (official input) and as object masks (ours)."""
    labels, ours = {}, []
    for s in range(n_seq):
        t, h, w, n = rng.integers(3, 8), rng.integers(4, 30), rng.integers(4, 30), rng.integers(1, 4)
        gt = _labels(rng, t, h, w, n, void=True)
        gt[0, 0, 0] = 1  # the first frame names the objects: at least one
        m = rng.integers(1, n + 3) if task == "unsupervised" else rng.integers(1, n + 1)
        pred = _labels(rng, t, h, w, m, p_absent=0.3)
        pred[1, 0, 0] = 1  # a scored frame has a label (the official reader reads at least one object)
        if task == "semi-supervised":
            pred[pred > int(gt[0][gt[0] != 255].max())] = 0
        labels[f"s{s}"] = (gt, pred)
        masks, void = M.gt_objects(gt)
        ours.append((f"s{s}", masks, M.pred_objects(pred), void))
    return labels, ours


@pytest.mark.parametrize("task", M.TASKS)
def test_dataset_j_and_f_equal_the_official_evaluation(task):
    rng = np.random.default_rng(6 if task == "unsupervised" else 7)
    for _ in range(6):
        labels, ours = _dataset(rng, task, n_seq=4)
        official_row, official_objects = davis_evaluate(labels, task)
        summary = M.evaluate(ours, task=task)
        _same(list(summary.row().values()), official_row)
        assert list(summary.per_object) == list(official_objects)
        _same(list(summary.per_object.values()), list(official_objects.values()))


def test_object_count_limits_follow_the_official_code():
    gt = np.zeros((1, 4, 6, 6), bool)
    gt[0, :, 2:4, 2:4] = True
    two = np.concatenate([gt, gt])
    with pytest.raises(ValueError, match="semi-supervised"):  # the official code exits
        M.sequence_scores(gt, two, task="semi-supervised")
    with pytest.raises(SystemExit):
        _evaluate_semisupervised(gt[:, 1:-1], two[:, 1:-1], None, ("J", "F"))
    with pytest.raises(ValueError, match="unsupervised"):
        M.sequence_scores(gt, np.concatenate([gt] * 21), task="unsupervised")
    # an extra object only in the first frame is not read by the semi-supervised task: no error
    extra = np.concatenate([gt, np.zeros_like(gt)])
    extra[1, 0, 0, 0] = True
    j, f = M.sequence_scores(gt, extra, task="semi-supervised")
    assert j.tolist() == [[1.0, 1.0]] and f.tolist() == [[1.0, 1.0]]
    with pytest.raises(ValueError, match="task"):
        M.sequence_scores(gt, gt, task="referring")


def _hand_sequences():
    """Two 4-frame 4x4 sequences (tolerance 1 pixel). a: two 2x2 objects in opposite corners, the second
    missed in frame 1. b: a one-pixel object in frame 0 only, predicted one pixel diagonally off."""
    a_gt = np.zeros((4, 4, 4), np.uint8)
    a_gt[:, :2, :2], a_gt[:, 2:, 2:] = 1, 2
    a_pred = a_gt.copy()
    a_pred[1][a_pred[1] == 2] = 0
    b_gt, b_pred = np.zeros((4, 4, 4), np.uint8), np.zeros((4, 4, 4), np.uint8)
    b_gt[0, 1, 1], b_pred[0, 2, 2] = 1, 1
    return {"a": (a_gt, a_pred), "b": (b_gt, b_pred)}


def _ours(sequences):
    """(name, gt objects, predicted objects, void) of label-map sequences."""
    out = []
    for name, (gt, pred) in sequences.items():
        masks, void = M.gt_objects(gt)
        out.append((name, masks, M.pred_objects(pred), void))
    return out


def test_aggregation_by_hand():
    seqs = _hand_sequences()
    j, f = M.sequence_scores(*_ours(seqs)[0][1:])
    assert j.tolist() == [[1, 1, 1, 1], [1, 0, 1, 1]] and f.tolist() == [[1, 1, 1, 1], [1, 0, 1, 1]]
    j, f = M.sequence_scores(*_ours(seqs)[1][1:])
    assert j.tolist() == [[0, 1, 1, 1]] and f.tolist() == [[0.75, 1, 1, 1]]  # empty on empty scores 1
    s = M.evaluate(_ours(seqs))  # unsupervised: all frames
    assert s.per_object == {"a_1": (1.0, 1.0), "a_2": (0.75, 0.75), "b_1": (0.75, 0.9375)}
    # global means over the 3 OBJECTS (over the 2 sequences J would be (0.875 + 0.75) / 2 = 0.8125)
    assert s.j_mean == pytest.approx(2.5 / 3, abs=1e-15) and s.f_mean == pytest.approx(2.6875 / 3, abs=1e-15)
    assert s.jf_mean == pytest.approx((2.5 / 3 + 2.6875 / 3) / 2, abs=1e-15)
    assert s.j_recall == pytest.approx(2.5 / 3) and s.f_recall == pytest.approx(2.75 / 3)
    # decay over 4 frames: bins [0:2] and [2:4]; a_2's J: mean(1, 0) - mean(1, 1) = -0.5
    assert s.j_decay == pytest.approx(-1 / 3) and s.f_decay == pytest.approx(-0.625 / 3)
    _same(list(s.row().values()), davis_evaluate(seqs, "unsupervised")[0])
    # semi-supervised: frames 1 and 2 only
    s = M.evaluate(_ours(seqs), task="semi-supervised")
    assert s.per_object == {"a_1": (1.0, 1.0), "a_2": (0.5, 0.5), "b_1": (1.0, 1.0)}
    assert s.jf_mean == pytest.approx(2.5 / 3)
    _same(list(s.row().values()), davis_evaluate(seqs, "semi-supervised")[0])


def test_unsupervised_task_matches_objects_and_names_them_in_prediction_order():
    seqs = _hand_sequences()
    a_gt, a_pred = seqs["a"]
    swapped = np.choose(a_pred, [0, 2, 1]).astype(np.uint8)  # predicted labels 1 and 2 exchanged
    seqs["a"] = (a_gt, swapped)
    s = M.evaluate(_ours(seqs))
    assert s.jf_mean == pytest.approx((2.5 / 3 + 2.6875 / 3) / 2, abs=1e-15)  # matched back
    assert s.per_object["a_1"] == (0.75, 0.75)  # the pair of predicted object 1 (true object 2)
    official_row, official_objects = davis_evaluate(seqs, "unsupervised")
    _same(list(s.row().values()), official_row)
    assert s.per_object == official_objects
    semi = M.evaluate(_ours(seqs), task="semi-supervised")  # no matching: the swap costs
    # a_1 in frames 1, 2: nothing, then the other corner's block (J 0, F 0.75: precision 1, recall 3/5)
    assert semi.per_object["a_1"] == pytest.approx((0.0, 0.375)) and semi.j_mean == pytest.approx(1 / 3)


def test_mevis_protocol_equals_the_official_code():
    rng = np.random.default_rng(8)
    ours, official = {}, {}
    for e in range(8):
        t, h, w = rng.integers(1, 6), rng.integers(3, 25), rng.integers(3, 25)
        objects = _labels(rng, t, h, w, rng.integers(1, 3))
        gt = np.zeros((t, h, w), np.uint8)
        for k in range(1, objects.max(initial=0) + 1):  # eval_mevis.py L43-47: the referred objects summed
            gt += (objects == k).astype(np.uint8)
        pred = (_labels(rng, t, h, w, 1) > 0).astype(np.uint8) * 255
        ours[f"e{e}"] = M.mevis_scores(gt, pred)
        official[f"e{e}"] = mevis_expression(gt, pred)
        _same(ours[f"e{e}"], official[f"e{e}"])
    _same(M.mevis_summary(ours), mevis_summary(official))
    # every frame counts: the first and the last too, unlike the semi-supervised DAVIS task
    gt = np.zeros((3, 4, 4), bool)
    gt[:, 1:3, 1:3] = True
    pred = gt.copy()
    pred[0] = False
    assert M.mevis_scores(gt, pred) == pytest.approx((2 / 3, 2 / 3))


def test_bad_inputs_are_refused():
    a = np.zeros((4, 5), bool)
    with pytest.raises(ValueError, match="one shape"):
        M.region_similarity(a, np.zeros((5, 4), bool))
    with pytest.raises(ValueError, match="void"):
        M.boundary_f(a, a, np.zeros((3, 3), bool))
    with pytest.raises(ValueError, match="one"):
        M.region_similarity(np.zeros((2, 4, 5)), np.zeros((2, 4, 5)))
    with pytest.raises(ValueError, match="at least one pixel"):
        M.boundary_map(np.zeros((0, 5)))
    with pytest.raises(ValueError, match="void"):
        M.sequence_scores(np.zeros((1, 3, 4, 5)), np.zeros((1, 3, 4, 5)), np.zeros((3, 5, 4)))
    with pytest.raises(ValueError, match="bound_th"):
        M.boundary_tolerance((4, 5), -1)
    assert math.isnan(M.summarize({}).jf_mean)


def test_an_all_empty_prediction_scores_as_the_official_zero_padding():
    """No predicted object at all (every mask empty, as random weights give): the official reader reads 0
    objects and ``_evaluate_unsupervised`` pads them with empty masks."""
    gt = np.zeros((2, 4, 6, 6), bool)
    gt[0, :, 1:3, 1:3], gt[1, :, 3:5, 3:5] = True, True
    empty = M.pred_objects(np.zeros((4, 6, 6), np.uint8))
    assert empty.shape == (0, 4, 6, 6)
    j, f = M.sequence_scores(gt, empty)
    oj, of = _evaluate_unsupervised(gt, empty, None, ("J", "F"))
    assert np.array_equal(j, oj) and np.array_equal(f, of) and not j.any()


# ----------------------------------------------------------------------------------------------
# Against the official code itself (../shared/official/davis2017-evaluation)
# ----------------------------------------------------------------------------------------------

def _videoglamm_copy(path):
    """VideoGLaMM's copy of the DAVIS code (``eval_referdavis_metrics.py``: ``DAVIS``, ``Results``, the
    metrics, ``db_statistics``, ``DAVISEvaluation``, L1-515), executed without its run section (L526-535 parse
    the command line and evaluate)."""
    import ast

    tree = ast.parse(path.read_text())
    run = next(n.lineno for n in tree.body if isinstance(n, ast.Import) and n.names[0].name == "argparse")
    assert run == 526
    namespace = {"__name__": "eval_referdavis_metrics"}
    body = [n for n in tree.body if n.lineno < run]
    exec(compile(ast.Module(body=body, type_ignores=[]), str(path), "exec"), namespace)
    return SimpleNamespace(**namespace)


@pytest.fixture(scope="module", params=["davis2017-evaluation", "VideoGLaMM"])
def davis(official, request):
    """The official DAVIS code: the package ``davis2017`` imported from its stored tree, or VideoGLaMM's copy
    of it (mbzuai-oryx/VideoGLaMM @6b15b1e, what its Ref-DAVIS-17 numbers come from); each with
    ``db_eval_iou``, ``f_measure``, ``db_eval_boundary`` and ``DAVISEvaluation``."""
    if request.param == "VideoGLaMM":
        return _videoglamm_copy(official.tree("VideoGLaMM") / "VideoGLaMM" / "eval_referdavis_metrics.py")
    root = str(official.tree("davis2017-evaluation"))
    sys.path.insert(0, root)
    try:
        from davis2017 import evaluation, metrics

        assert metrics.__file__.startswith(root)
    finally:
        sys.path.remove(root)
    return SimpleNamespace(DAVISEvaluation=evaluation.DAVISEvaluation, db_eval_iou=metrics.db_eval_iou,
                           f_measure=metrics.f_measure, db_eval_boundary=metrics.db_eval_boundary)


#: the official J divides 0 by 0 where the union is empty (then sets 1), warning as it does on its own
official_warnings = pytest.mark.filterwarnings("ignore:invalid value encountered in:RuntimeWarning")
ODD_SHAPES = [(1, 1), (1, 2), (2, 1), (3, 500), (500, 3), (17, 23), (61, 89), (101, 99), (481, 641)]


@official_warnings
def test_j_and_f_equal_the_official_module_on_random_masks(davis):
    """Every frame's J and F, one frame and stacks, with and without void, at every tolerance, on odd sizes
    and on empty, full, one-pixel, line and blob masks: exactly the official ``db_eval_iou`` and
    ``f_measure``."""
    off = davis
    rng = np.random.default_rng(11)
    for h, w in SMALL_SHAPES + ODD_SHAPES:
        big = h * w > 100_000
        for _ in range(2 if big else 12):
            p, g = random_mask(rng, h, w), random_mask(rng, h, w)
            void = None if rng.random() < 0.4 else random_mask(rng, h, w)
            assert M.region_similarity(p, g, void) == off.db_eval_iou(g, p, void)
            for th in [0.008] if big else BOUND_THS:
                assert M.boundary_f(p, g, void, bound_th=th) == off.f_measure(p, g, void,
                                                                              bound_th=th), (h, w, th)
        t = 3
        p = np.stack([random_mask(rng, h, w) for _ in range(t)])
        g = np.stack([random_mask(rng, h, w) for _ in range(t)])
        void = rng.random((t, h, w)) < 0.1
        for v in (None, void):
            _same(M.region_similarity_frames(p, g, v), off.db_eval_iou(g, p, v))
            _same(M.boundary_f_frames(p, g, v), off.db_eval_boundary(g, p, v))


@official_warnings
def test_edge_cases_equal_the_official_module(davis):
    off = davis
    for h, w in [(1, 1), (2, 3), (37, 53), (480, 854)]:
        empty, full = np.zeros((h, w), bool), np.ones((h, w), bool)
        dot = empty.copy()
        dot[h // 2, w // 2] = True
        for p, g, void in [(empty, empty, None), (empty, dot, None), (dot, empty, None), (dot, dot, None),
                           (full, full, None), (full, empty, None), (full, dot, full), (dot, full, empty)]:
            assert M.region_similarity(p, g, void) == off.db_eval_iou(g, p, void), (h, w)
            assert M.boundary_f(p, g, void) == off.f_measure(p, g, void), (h, w)


def _write_davis(root, labels, task):
    """A DAVIS 2017 folder (``davis.py`` L29-52: ``ImageSets/2017/val.txt``, ``JPEGImages/480p/<seq>/*.jpg``,
    the task's annotations as PNG label maps) and a results folder (``results.py`` L12-13:
    ``<seq>/<frame>.png``)."""
    annotations = "Annotations" if task == "semi-supervised" else "Annotations_unsupervised"
    (root / "ImageSets" / "2017").mkdir(parents=True)
    (root / "ImageSets" / "2017" / "val.txt").write_text("".join(f"{seq}\n" for seq in labels))
    for seq, (gt, pred) in labels.items():
        for sub in ("JPEGImages", annotations):
            (root / sub / "480p" / seq).mkdir(parents=True)
        (root / "results" / seq).mkdir(parents=True)
        for i, (g, r) in enumerate(zip(gt, pred)):
            Image.new("RGB", g.shape[::-1]).save(root / "JPEGImages" / "480p" / seq / f"{i:05d}.jpg")
            Image.fromarray(g).save(root / annotations / "480p" / seq / f"{i:05d}.png")
            Image.fromarray(r).save(root / "results" / seq / f"{i:05d}.png")


@official_warnings
@pytest.mark.parametrize("task", M.TASKS)
def test_dataset_equals_the_official_davis_evaluation(davis, task, tmp_path):
    """``DAVISEvaluation(root, task, "val").evaluate(results)`` on PNG files, then the global row of
    ``evaluation_method.py`` L39-45: our summary of the same label maps, every number and object equal."""
    rng = np.random.default_rng(12 if task == "unsupervised" else 13)
    for k in range(2):
        labels, ours = _dataset(rng, task, n_seq=4)
        _write_davis(tmp_path / str(k), labels, task)
        res = davis.DAVISEvaluation(str(tmp_path / str(k)), task, "val").evaluate(
            str(tmp_path / str(k) / "results"))
        J, F = res["J"], res["F"]
        row = [(np.mean(J["M"]) + np.mean(F["M"])) / 2., np.mean(J["M"]), np.mean(J["R"]), np.mean(J["D"]),
               np.mean(F["M"]), np.mean(F["R"]), np.mean(F["D"])]
        summary = M.evaluate(ours, task=task)
        _same(list(summary.row().values()), row)
        assert list(summary.per_object) == list(J["M_per_object"]) == list(F["M_per_object"])
        _same([v for jf in summary.per_object.values() for v in jf],
              [v for name in J["M_per_object"] for v in (J["M_per_object"][name], F["M_per_object"][name])])
