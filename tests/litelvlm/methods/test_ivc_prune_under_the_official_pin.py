"""What IVC-Prune's LLaVA-1.5 rule reads in GLaMM's LLaMA, against the release IVC-Prune's bundled
transformers modifies, run in a second environment (``tests/pinned_env.py``: transformers 4.51.3,
FireRedTeam/IVC-Prune @03afd9c ``transformers/src/transformers/__init__.py`` L21).

``tests/litelvlm/methods/test_ivc_prune_official.py`` transcribes the official selection and loop and runs
them on transformers 5's ``LlamaRotaryEmbedding`` and decoder layers; the bundled ``modeling_llama.py`` keeps
4.51.3's (only ``compute_attention_weights`` and ``IVCP_forward_flashattention`` are added). The official side
here (``tests/pinned_scripts/llama_ivc_official.py``, launched with the Qwen2.5-VL variant's by
``ivc_prune_official_pin.py``) runs 4.51.3's own ``LlamaForCausalLM`` (eager) on the same tensors and inputs
and returns the rotary tables, the input of every layer and the final state: each equals ours bit for bit, in
float32 and bfloat16 (the rotary frequencies in float32 as the bfloat16 pipeline holds them), on the tiny and
the 8-head ``scaled`` architecture at odd lengths. The rule itself is torch on those tensors."""

from __future__ import annotations

import pytest
import torch

from tests.litelvlm.methods.ivc_prune_official_pin import LLAMA_CASES as CASES
from tests.litelvlm.methods.ivc_prune_official_pin import official_side


def test_the_official_side_ran_under_the_pin():
    versions = official_side(False)["llama"][1]["versions"]
    assert versions["transformers"] == "4.51.3" and "pinned" in versions["transformers_path"]


@pytest.mark.parametrize("case", range(len(CASES)), ids=[f"{a}-{n}-{str(d)[6:]}" for a, n, d in CASES])
def test_rotary_tables_layer_inputs_and_final_state_are_4_51s(case):
    ours, got = official_side(False)["llama"]
    (cos, sin, hidden, last), official = ours[case], got["cases"][case]
    assert torch.equal(cos, official["cos"]) and torch.equal(sin, official["sin"])
    assert len(hidden) == len(official["hidden_states"])
    for layer, (mine, theirs) in enumerate(zip(hidden, official["hidden_states"], strict=True)):
        assert torch.equal(mine, theirs), (CASES[case], layer)
    assert torch.equal(last, official["last"])
