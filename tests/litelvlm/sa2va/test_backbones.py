"""``litelvlm.sa2va.backbones``: the pipelines of Sa2VA's three backbones share one mask head, one video path
and one reading of a generated answer (declared once, in the base they all extend), and each backbone's
prepared input extends one input that declares a video's fields."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from litelvlm.errors import LiteLVLMError

#: what every backbone's pipeline takes from the base alone (none of them declares its own)
SHARED = ("mask_shape", "sequence_embeds", "run_input", "lm_head", "generated", "seg_prompts", "decode_masks",
          "upscale_masks")
#: a backbone that adds to a shared member (calling the base's)
ADDS = {("qwen3-vl", "sequence_embeds"): ["Sa2VAQwen3Pipeline"]}


def _pipelines():
    from litelvlm.sa2va.backbones import BACKBONE_PIPELINES

    return {name: lazy.get() for name, lazy in BACKBONE_PIPELINES.items()}


def test_every_backbone_extends_the_base_and_declares_none_of_its_members_again():
    from litelvlm.sa2va.backbones import Sa2VABackbone

    pipelines = _pipelines()
    assert set(pipelines) == {"qwen2.5-vl", "qwen3-vl", "internvl3"}
    for name, cls in pipelines.items():
        below = cls.__mro__[:cls.__mro__.index(Sa2VABackbone)]
        for member in SHARED:
            owners = [c.__name__ for c in below if member in vars(c)]
            assert owners in ([], ADDS.get((name, member))), f"{name}: {member} declared again in {owners}"


def test_the_table_of_backbones_is_declared_in_backbones_alone():
    from litelvlm.sa2va import backbones, pipeline

    assert pipeline.BACKBONE_PIPELINES is backbones.BACKBONE_PIPELINES
    assert "BACKBONE_PIPELINES" not in pipeline.__all__ and "BACKBONE_PIPELINES" in backbones.__all__


def test_each_backbone_input_extends_the_one_that_declares_a_video():
    from litelvlm.sa2va.backbones import Sa2VABackboneInput
    from litelvlm.sa2va.internvl.pipeline import InternVLInput
    from litelvlm.sa2va.pipeline import Sa2VAInput

    declared = {f.name for f in dataclasses.fields(Sa2VABackboneInput)}
    assert {"video", "joined_positions"} <= declared
    for cls in (Sa2VAInput, InternVLInput):
        assert issubclass(cls, Sa2VABackboneInput)
        assert not {"video", "joined_positions"} & set(cls.__annotations__), cls.__name__


@pytest.mark.parametrize("backbone", ["qwen2.5-vl", "internvl3"])
def test_a_video_s_masks_refuse_a_gradient_in_one_sentence(backbone):
    """SAM 2's memory propagation runs without gradients: every backbone refuses a prompt that needs one,
    saying why and what a saliency target needs."""
    cls = _pipelines()[backbone]
    pipe = cls.__new__(cls)
    prepared = type("P", (), {"video": object()})()
    prompt = torch.zeros(1, 1, 4, requires_grad=True)
    with pytest.raises(LiteLVLMError, match=r"memory propagation, run without gradients: no gradient reaches "
                                            r"the prompt \(a saliency target needs one image\)"):
        pipe.decode_masks(prepared, prompt)
