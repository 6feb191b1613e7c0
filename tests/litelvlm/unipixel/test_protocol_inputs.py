"""``litelvlm.unipixel.protocol.ProtocolInputs``: what an image's and a video's model inputs share is declared
once; each adds only its own field."""

from __future__ import annotations

import dataclasses

from litelvlm.unipixel.protocol import ProtocolInputs, UniPixelInputs
from litelvlm.unipixel.video import VideoInputs


def test_an_image_s_and_a_video_s_inputs_extend_one_declaration():
    shared = {f.name for f in dataclasses.fields(ProtocolInputs)}
    assert {"question", "text", "answer", "response", "frame_size", "frames", "inputs"} == shared
    for cls, own in ((UniPixelInputs, {"resized"}), (VideoInputs, {"sampled"})):
        assert issubclass(cls, ProtocolInputs)
        assert set(cls.__annotations__) == own, cls.__name__
