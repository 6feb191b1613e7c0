"""Property-based tests (hypothesis) of the annotation readers and the mask geometry.

Readers: any segmentation, valid or not (NaN, infinite, negative or out-of-image polygon coordinates; RLE
counts that are negative, short, too long or of another size; compressed RLE strings with stray bytes), ends
in a mask of the image's size or a ``ValueError`` / ``LiteLVLMError``, never a crash; a valid one decodes as
pycocotools decodes it. Geometry: the patch and token coverages of a mask keep their shape, stay within [0,
1], add up over disjoint masks and account for the mask's area; SAM's and UniPixel's resize rules keep their
documented bounds. Examples are few (fast on two cores) and the deadline is off (first calls import
pycocotools and torch)."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import numpy as np
import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from litelvlm.data.segmentation import decode_segmentation, rle_string_counts  # noqa: E402
from litelvlm.errors import LiteLVLMError  # noqa: E402

FAST = settings(max_examples=40, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])

sizes = st.tuples(st.integers(1, 24), st.integers(1, 24))  # (height, width)
BAD_VALUES = [float("nan"), float("inf"), float("-inf"), -1e6, 1e6, 1e12, -1e9]


def _runs(mask: np.ndarray) -> list[int]:
    """The uncompressed COCO RLE counts of a mask (column-major, starting with a run of zeros)."""
    flat = np.asarray(mask, dtype=np.uint8).flatten(order="F")
    change = np.flatnonzero(np.diff(flat)) + 1
    bounds = np.concatenate([[0], change, [flat.size]])
    runs = np.diff(bounds).tolist()
    return ([0] + runs) if flat.size and flat[0] == 1 else runs


@st.composite
def masks(draw, hw=sizes):
    h, w = draw(hw)
    bits = draw(st.lists(st.booleans(), min_size=h * w, max_size=h * w))
    return np.array(bits, dtype=bool).reshape(h, w)


@st.composite
def valid_segmentations(draw):
    """(segmentation, height, width, expected mask or None): polygons of 3 points or more, within the image or
    reaching far outside it (pycocotools clips them), or an RLE of a mask."""
    h, w = draw(sizes)
    kind = draw(st.sampled_from(["polygons", "uncompressed", "compressed"]))
    if kind == "polygons":
        coord = st.tuples(st.floats(-3 * w - 5, 4 * w + 5), st.floats(-3 * h - 5, 4 * h + 5))
        polys = draw(st.lists(st.lists(coord, min_size=3, max_size=6), max_size=3))
        return [[v for xy in p for v in xy] for p in polys], h, w, None
    m = draw(masks(st.just((h, w))))
    if kind == "uncompressed":
        return {"size": [h, w], "counts": _runs(m)}, h, w, m
    from pycocotools import mask as mask_utils

    rle = mask_utils.encode(np.asfortranarray(m.astype(np.uint8)))
    return {"size": [h, w], "counts": rle["counts"].decode("ascii")}, h, w, m


@st.composite
def any_segmentations(draw):
    """A valid segmentation, or one broken in one of the ways a file can be."""
    seg, h, w, _ = draw(valid_segmentations())
    how = draw(st.sampled_from(["none", "bad coordinate", "count changed", "negative count", "NaN count",
                                "count appended", "size swapped", "byte changed", "byte appended",
                                "wrong type"]))
    counts = seg["counts"] if isinstance(seg, dict) and isinstance(seg["counts"],
                                                                   list) else _runs(np.zeros((h, w)))
    if how == "bad coordinate":
        polys = [list(p) for p in seg] if isinstance(seg, list) and seg else [[1.0, 1.0, 2.0, 1.0, 2.0, 2.0]]
        i = draw(st.integers(0, len(polys) - 1))
        polys[i][draw(st.integers(0, len(polys[i]) - 1))] = draw(st.sampled_from(BAD_VALUES))
        return polys, h, w
    if how in ("count changed", "negative count", "NaN count"):
        counts = list(counts)
        i = draw(st.integers(0, len(counts) - 1))
        counts[i] = {"count changed": counts[i] + draw(st.sampled_from([-1, 1, 7, 10**6])),
                     "negative count": -1 - counts[i], "NaN count": float("nan")}[how]
        return {"size": [h, w], "counts": counts}, h, w
    if how == "count appended":
        return {"size": [h, w], "counts": list(counts) + [draw(st.integers(0, 50))]}, h, w
    if how == "size swapped":
        return {"size": [w + 1, h], "counts": counts}, h, w
    if how.startswith("byte"):
        from pycocotools import mask as mask_utils

        s = seg["counts"] if isinstance(seg, dict) and isinstance(seg["counts"], str) else \
            mask_utils.encode(np.zeros((h, w), np.uint8, order="F"))["counts"].decode("ascii")
        byte = draw(st.characters(min_codepoint=32, max_codepoint=130))
        i = draw(st.integers(0, len(s) - 1))
        return {"size": [h, w],
                "counts": s[:i] + byte + s[i + 1:] if how == "byte changed" else s + byte}, h, w
    if how == "wrong type":
        return draw(
            st.sampled_from([7, "polygon", [7, 8, 9], [{"size": [h, w]}], {"counts": [h * w]}, None])), h, w
    return seg, h, w


@FAST
@given(valid_segmentations())
def test_a_valid_segmentation_decodes_as_pycocotools_decodes_it(case):
    from pycocotools import mask as mask_utils

    seg, h, w, expected = case
    m = decode_segmentation(seg, h, w)
    assert m.shape == (h, w) and m.dtype == bool
    if expected is not None:
        np.testing.assert_array_equal(m, expected)
    polys = [p for p in seg if len(p) >= 6] if isinstance(seg, list) else []
    if polys:
        direct = mask_utils.decode(mask_utils.merge(mask_utils.frPyObjects(polys, h, w))).astype(bool)
        np.testing.assert_array_equal(m, direct)
    counts = decode_segmentation(seg, h, w, parts="sum")
    assert counts.shape == (h, w) and counts.dtype == np.uint8 and np.array_equal(counts > 0, m)


@FAST
@given(any_segmentations())
def test_any_segmentation_is_a_mask_of_the_image_size_or_a_value_error(case):
    seg, h, w = case
    try:
        m = decode_segmentation(seg, h, w)
    except ValueError as e:
        assert str(e) and "\n" not in str(e)
    else:
        assert m.shape == (h, w) and m.dtype == bool


@FAST
@given(masks())
def test_compressed_counts_read_back_as_the_runs_pycocotools_wrote(m):
    from pycocotools import mask as mask_utils

    rle = mask_utils.encode(np.asfortranarray(m.astype(np.uint8)))
    assert rle_string_counts(rle["counts"]) == _runs(m)


@settings(max_examples=20, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(any_segmentations(), st.sampled_from(["refer", "coco"]))
def test_the_loaders_give_records_whose_masks_decode_or_one_clear_error(case, loader):
    """Through the real loaders (a one-image REFER folder): records whose mask is of the image's size, or a
    ``LiteLVLMError`` naming the instances file and the annotation."""
    import pickle

    from litelvlm.data.refer import load_coco_instances, load_refer

    seg, h, w = case
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "images").mkdir()
        inst = {"images": [{"id": 1, "file_name": "a.jpg", "height": h, "width": w}],
                "annotations": [{"id": 5, "image_id": 1, "category_id": 1, "segmentation": seg}],
                "categories": [{"id": 1, "name": "thing"}]}
        (root / "instances.json").write_text(json.dumps(inst))
        refs = [
            {"ref_id": 1, "image_id": 1, "ann_id": 5, "category_id": 1, "split": "val", "file_name": "a.jpg",
                 "sentences": [{"sent_id": 1, "sent": "the thing", "raw": "the thing"}]}]
        (root / "refs(unc).p").write_bytes(pickle.dumps(refs, protocol=2))
        try:
            records = load_refer(root, None) if loader == "refer" else load_coco_instances(
                root / "instances.json", None)
        except LiteLVLMError as e:
            message = str(e)
            assert "instances.json" in message and "annotation 5 (image 1)" in message and "\n" not in message
            return
        assert len(records) == 1 and records[0].mask().shape == (h, w)


# ---------------------------------------------------------------- mask geometry

geometries = st.sampled_from([("shortest", 14, False), ("shortest", 14, True), ("squash", 14, False),
                              ("shortest", 28, False), ("squash", 28, True)])


def _geometry(mode: str, crop: int, pad: bool):
    from litelvlm.clip.traces import Geometry

    return Geometry(mode=mode, resize=crop, crop=(crop, crop), pad_to_square=pad)


@FAST
@given(masks(st.tuples(st.integers(1, 40), st.integers(1, 40))), geometries, st.integers(1, 7))
def test_patch_coverage_keeps_its_shape_bounds_and_the_masks_area(m, geom, cells):
    from litelvlm.data.geometry import patch_coverage

    g = _geometry(*geom)
    c = patch_coverage(m, g, (cells, cells))
    assert c.coverage.shape == (cells, cells)
    assert np.all((0 <= c.coverage) & (c.coverage <= 1)) and 0 <= c.crop_cut_share <= 1
    assert c.mask_area_fraction == pytest.approx(m.mean())
    p = c.params
    assert min(p.resized) >= 1 and p.out == (geom[1], geom[1]) and p.frame[0] >= m.shape[0] and p.frame[
        1] >= m.shape[1]
    ys, _ = p.to_original(np.linspace(0, p.out[0], cells + 1), np.zeros(cells + 1))
    _, xs = p.to_original(np.zeros(cells + 1), np.linspace(0, p.out[1], cells + 1))
    inside = float((c.coverage * np.diff(ys)[:, None] * np.diff(xs)[None, :]).sum())
    # the window's share of the mask
    assert inside == pytest.approx(m.sum() * (1 - c.crop_cut_share), abs=1e-6)


@FAST
@given(masks(st.tuples(st.integers(1, 40), st.integers(1, 40))), geometries, st.integers(1, 7), st.data())
def test_patch_coverage_adds_up_over_disjoint_masks(m, geom, cells, data):
    from litelvlm.data.geometry import patch_coverage

    g = _geometry(*geom)
    split = np.array(data.draw(st.lists(st.booleans(), min_size=m.size, max_size=m.size))).reshape(m.shape)
    a, b = m & split, m & ~split
    whole = patch_coverage(m, g, (cells, cells)).coverage
    parts = patch_coverage(a, g, (cells, cells)).coverage + patch_coverage(b, g, (cells, cells)).coverage
    np.testing.assert_allclose(whole, parts, atol=1e-9)
    full = patch_coverage(np.ones(m.shape, bool), g, (cells, cells))
    if not geom[2] or m.shape[0] == m.shape[1]:  # no padding: every cell lies on the image
        np.testing.assert_allclose(full.coverage, 1.0)


@FAST
@given(masks(st.tuples(st.integers(1, 60), st.integers(1, 60))), st.integers(1, 4), st.integers(1, 4))
def test_token_coverage_on_the_merged_grid_keeps_shape_bounds_and_area(m, llm_h, llm_w):
    from litelvlm.qwen_vision.grid import TokenGrid, token_coverage, token_edges

    grid = TokenGrid(1, 2 * llm_h, 2 * llm_w)
    cov = token_coverage(m, grid).numpy()
    assert cov.shape == (llm_h, llm_w) and np.all((0 <= cov) & (cov <= 1))
    ys, xs = (e.numpy() for e in token_edges(grid, m.shape))
    assert float((cov * np.diff(ys)[:, None] * np.diff(xs)[None, :]).sum()) == pytest.approx(
        m.sum(), abs=1e-6)
    np.testing.assert_allclose(token_coverage(np.ones(m.shape, bool), grid).numpy(), 1.0)


@FAST
@given(st.integers(1, 5000), st.integers(1, 5000))
def test_unipixel_smart_resize_gives_multiples_of_28_within_its_pixel_bounds_or_refuses(h, w):
    from litelvlm.data.resize_cap import MAX_RESIZED_SIDE
    from litelvlm.unipixel.protocol import IMAGE_FACTOR, MAX_RATIO, max_pixels, resized_size

    if max(h, w) / min(h, w) > MAX_RATIO:
        with pytest.raises(LiteLVLMError, match="aspect ratio above"):
            resized_size(h, w)
        return
    rh, rw = resized_size(h, w)
    assert rh % IMAGE_FACTOR == 0 and rw % IMAGE_FACTOR == 0 and min(rh, rw) >= IMAGE_FACTOR
    assert rh * rw <= max_pixels(1) and max(rh, rw) <= MAX_RESIZED_SIDE


@FAST
@given(st.integers(1, 3000), st.integers(1, 3000), st.floats(-30, 30), st.integers(1, 3))
def test_sam_resize_and_postprocess_keep_their_shapes(h, w, logit, s):
    import torch

    from litelvlm.data.resize_cap import check_resize
    from litelvlm.glamm.sam_preprocess import postprocess_masks, preprocess_shape

    rh, rw = preprocess_shape(h, w, 64)
    assert max(rh, rw) == 64
    if min(rh, rw) < 1:
        with pytest.raises(LiteLVLMError, match="below 1 pixel"):
            check_resize(None, (w, h), (rw, rh), "SAM")
        return
    out = postprocess_masks(torch.full((s, 1, 16, 16), logit), (rh, rw), (min(h, 200), min(w, 200)), size=64)
    assert out.shape == (s, min(h, 200), min(w, 200)) and torch.allclose(out, torch.tensor(logit), atol=1e-4)
