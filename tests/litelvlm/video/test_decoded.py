"""A video's frames decoded ahead (``litelvlm.video.decoded``): the same images as reading each frame from its
record, read only for the record's own video, and a missing frame the same error naming the file."""

from __future__ import annotations

import numpy as np
import pytest

from litelvlm.errors import LiteLVLMError
from litelvlm.video.datasets import load_ref_davis
from litelvlm.video.decoded import decode_video, frames_of
from litelvlm.video.ref_davis import by_video
from litelvlm.video.synthetic import write_synthetic_videos


@pytest.fixture(scope="module")
def videos(tmp_path_factory) -> dict:
    root = write_synthetic_videos(tmp_path_factory.mktemp("videos"), videos=2, frames=5, size=(67, 41))
    return by_video(load_ref_davis(root, "valid"))


def test_the_decoded_frames_are_the_records_frames(videos):
    for records in videos.values():
        decoded = decode_video(records[0])
        assert len(decoded.images) == len(records[0].frames)
        for rec in records:
            assert frames_of(rec, decoded) is decoded
            for i in range(len(rec.frames)):
                got, want = decoded.frame(i), rec.frame(i)
                assert got.mode == want.mode == "RGB" and got.size == want.size
                assert np.array_equal(np.asarray(got), np.asarray(want))


def test_another_videos_record_reads_its_own_frames(videos):
    (first, *_), (second, *_) = videos.values()
    assert frames_of(second, decode_video(first)) is second
    assert frames_of(second, None) is second


def test_a_missing_frame_is_the_records_error(tmp_path):
    root = write_synthetic_videos(tmp_path, videos=1, frames=3, size=(33, 35))
    rec = load_ref_davis(root, "valid")[0]
    rec.frame_path(2).unlink()
    with pytest.raises(LiteLVLMError) as want:
        rec.frame(2)
    with pytest.raises(LiteLVLMError) as got:
        decode_video(rec)
    assert str(got.value) == str(want.value) and str(rec.frame_path(2)) in str(got.value)
