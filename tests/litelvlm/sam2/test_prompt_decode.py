"""SAM 2's per-prompt mask decode exists once (``Sam2Prompt.decode``); a family changes it by declaring what
it does differently (Sa2VA: the masks cast to float32, no object-score gate), not by a second copy of the
loop.

The official transcription tests (``tests/litelvlm/test_sa2va_official.py``,
``tests/litelvlm/unipixel/test_head.py``) compare each family's decode with its official code; this one checks
the single loop and both settings on one tiny SAM 2 steered to an absent object (the object-score head's
bias), where the gate matters."""

from __future__ import annotations

import inspect

import pytest
import torch

from litelvlm.sa2va.sam2_head import Sa2VASam2
from litelvlm.sam2.config import NO_OBJ_SCORE
from litelvlm.sam2.prompt import Sam2Prompt
from litelvlm.unipixel.config import get_preset, sam2_config


def test_the_decode_loop_is_written_once():
    """No family subclass of ``Sam2Prompt`` redefines ``decode``; the loop's one call of the mask decoder is
    the base's."""
    import litelvlm.sa2va.sam2_head as sa2va_head

    assert "decode" not in Sa2VASam2.__dict__
    assert "mask_decoder(" not in inspect.getsource(sa2va_head)
    assert (Sam2Prompt.gate_object_score, Sa2VASam2.gate_object_score) == (True, False)
    assert (Sam2Prompt.mask_dtype, Sa2VASam2.mask_dtype) == (None, torch.float32)


@pytest.fixture(scope="module")
def absent_object():
    """(UniPixel's Sam2Prompt, Sa2VA's subclass) with the same tiny random weights, the object score forced
    negative, and one image's features."""
    p = get_preset("tiny")
    torch.manual_seed(0)
    base = Sam2Prompt(sam2_config(p.sam2_size, p.image_size), p.image_size).eval()
    sa2va = Sa2VASam2(sam2_config(p.sam2_size, p.image_size), p.image_size).eval()
    sa2va.load_state_dict(base.state_dict())
    feats = []
    for m in (base, sa2va):
        head = m.model.mask_decoder.pred_obj_score_head
        last = head.layers[-1] if hasattr(head, "layers") else head
        with torch.no_grad():
            last.weight.zero_()
            last.bias.fill_(-5.0)
        feats.append(m.encode_image(torch.zeros(1, 3, p.image_size, p.image_size)))
    return base, sa2va, feats


@pytest.mark.slow
def test_the_gate_blanks_an_absent_object_only_where_the_family_gates(absent_object):
    """(Slow: two SAM 2 models; the official tests of both families cover their decodes by default.)"""
    base, sa2va, (fb, fs) = absent_object
    prompts = torch.randn(2, 1, base.hidden_dim, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        gated = base.decode(fb, prompts, (20, 30))
        ungated = sa2va.decode(fs, prompts, (20, 30))
    assert (gated.object_score <= 0).all() and (ungated.object_score <= 0).all()
    assert (gated.low_res == NO_OBJ_SCORE).all()
    assert not (ungated.low_res == NO_OBJ_SCORE).any()
    assert ungated.low_res.dtype == torch.float32 and ungated.logits.shape == (2, 20, 30)
    torch.testing.assert_close(gated.iou, ungated.iou)
