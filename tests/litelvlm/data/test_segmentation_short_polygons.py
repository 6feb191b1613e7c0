"""Short polygons: refused exactly where pycocotools (REFER's ``annToMask``/``getMask``) cannot decode them,
and decoded to its pixels everywhere else (a later polygon of 0-2 points, an odd coordinate count, a first of
5)."""

import numpy as np
import pytest
from pycocotools import mask as mask_utils

from litelvlm.data.segmentation import decode_segmentation

H, W = 48, 64
P = [10.0, 10.0, 50.0, 10.0, 50.0, 40.0]

#: segmentations whose polygons have fewer than 3 points somewhere
SHORT = {
    "first of 5 numbers": [[10, 10, 50, 10, 50]],
    "first of 7 numbers": [P + [7]],
    "later of 0 numbers": [P, []],
    "later of 2 numbers": [P, [5, 5]],
    "later of 4 numbers": [P, [5, 5, 30, 30]],
    "later of 5 numbers": [P, [1, 2, 3, 4, 5]],
    "first of 4 numbers": [[10, 10, 50, 10]],
    "first of 2 numbers": [[10, 10]],
}


def _official(seg, parts):
    """What pycocotools itself gives, as sejong-rcv/LiteLVLM @5896153 dataset/utils/refcoco_refer.py L312-320
    (getMask: frPyObjects, then the parts summed) and REFER's annToMask (merged) decode it; None if it
    raises."""
    try:
        rles = mask_utils.frPyObjects(seg, H, W)
        if parts == "sum":
            return mask_utils.decode(rles).sum(axis=2).astype(np.uint8)
        return mask_utils.decode(mask_utils.merge(rles)).astype(bool)
    except Exception:  # noqa: BLE001 - any failure of the official reader is what we compare with
        return None


@pytest.mark.parametrize("parts", ["union", "sum"])
@pytest.mark.parametrize("case", SHORT)
def test_a_short_polygon_is_refused_only_where_pycocotools_cannot_decode_it(case, parts):
    seg = SHORT[case]
    official = _official(seg, parts)
    if official is None:
        with pytest.raises(ValueError, match="fewer than 3 points"):
            decode_segmentation(seg, H, W, parts=parts)
    else:
        np.testing.assert_array_equal(decode_segmentation(seg, H, W, parts=parts), official)
    assert (official is None) == case.startswith(("first of 4", "first of 2"))
