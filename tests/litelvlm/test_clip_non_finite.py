"""``litelvlm.clip.refuse_non_finite``: a model holding NaN or infinity is one error naming its first such
parameter; huge finite weights (whose norm overflows) pass."""

from __future__ import annotations

import pytest
import torch

from litelvlm.clip import refuse_non_finite
from litelvlm.errors import LiteLVLMError


def _model(dtype: torch.dtype = torch.float32) -> torch.nn.Module:
    torch.manual_seed(0)
    nn = torch.nn
    return nn.Sequential(nn.Linear(4, 4), nn.Linear(4, 4), nn.Embedding(3, 4)).to(dtype)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16])
def test_huge_finite_weights_pass(dtype):
    m = _model(dtype)
    with torch.no_grad():
        m[1].weight.fill_(torch.finfo(dtype).max)   # its norm is infinite; every value finite
    refuse_non_finite(m, "the model")


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_the_first_non_finite_parameter_is_named(bad):
    m = _model()
    with torch.no_grad():
        m[1].bias[2] = bad
        m[2].weight[0, 0] = bad
    with pytest.raises(LiteLVLMError, match=r"model has non-finite weights \(NaN or infinity\) in '1.bias'"):
        refuse_non_finite(m, "the model")


def test_skipped_parameters_and_integer_tensors_are_not_read():
    m = _model()
    with torch.no_grad():
        m[0].weight[0, 0] = float("nan")
    refuse_non_finite(m, "the model", skip="0.")
    refuse_non_finite(object(), "no parameters at all")
