"""``litelvlm.lvlm.prepared.Prepared``: the fields every family's prepared input has are declared once, in the
base (a dataclass whose fields are keyword-only), and no family's input declares one of them again."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from litelvlm.lvlm.prepared import Prepared

BASE_FIELDS = {"sentences", "input_ids", "seed", "answer", "prompt_len", "clip_cache"}


def _inputs() -> list[type]:
    from litelvlm.cost.meta import StandInInput
    from litelvlm.glamm.pipeline import PreparedImage
    from litelvlm.qwen.pipeline import QwenSam2Input
    from litelvlm.sa2va.internvl.pipeline import InternVLInput
    from litelvlm.sa2va.pipeline import Sa2VAInput
    from litelvlm.unipixel.pipeline import UniPixelInput
    from litelvlm.videoglamm.video_input import VideoGLaMMInput

    return [PreparedImage, QwenSam2Input, UniPixelInput, Sa2VAInput, InternVLInput, VideoGLaMMInput,
            StandInInput]


def test_the_base_declares_the_shared_fields_keyword_only():
    fields = {f.name: f for f in dataclasses.fields(Prepared)}
    assert set(fields) == BASE_FIELDS
    assert all(f.kw_only for f in fields.values())
    assert not fields["clip_cache"].compare and not fields["clip_cache"].repr


@pytest.mark.parametrize("cls", _inputs(), ids=lambda c: c.__name__)
def test_no_family_input_declares_a_base_field_again(cls):
    assert issubclass(cls, Prepared)
    again = [c.__name__ + "." + name for c in cls.__mro__[:cls.__mro__.index(Prepared)]
             for name in vars(c).get("__annotations__", {}) if name in BASE_FIELDS]
    assert again == []
    assert BASE_FIELDS <= {f.name for f in dataclasses.fields(cls)}


def test_an_input_s_cache_is_its_own():
    from litelvlm.cost.meta import StandInInput

    a, b = (StandInInput(sentences=[], input_ids=torch.empty(0)) for _ in range(2))
    a.clip_cache["x"] = 1
    assert b.clip_cache == {} and a.clip_cache == {"x": 1}
