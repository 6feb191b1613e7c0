"""The official side of the VideoGLaMM tests under VideoGLaMM's pin (``tests/pinned_env.py``: transformers
4.41.0), every case in one launch, so that the pinned packages are imported once a process:
``phi3_official.py`` on the Phi-3 cases (``test_hf_config_under_the_official_pin.py``),
``clip_processor_official.py`` on the CLIP frames (``test_prompt_clip_pixels.py``) and
``clip_vision_official.py`` on the tiny preset's CLIP tower
(``test_hf_config_clip_under_the_official_pin.py``), all through ``tests/pinned_scripts/batch.py``."""

from __future__ import annotations

import functools
import json
import tempfile
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import torch
from transformers import CLIPVisionModel, Phi3ForCausalLM

from litelvlm.videoglamm.config import get_preset
from litelvlm.videoglamm.hf_config import clip_config, phi3_config
from tests.pinned_env import run_pinned

#: Phi-3: (official sliding_window, sequence length)
PHI3_CASES = [(3, 15), (7, 31), (2047, 2100)]
#: the Phi3Config fields both versions take, as the official checkpoint's config holds them
FIELDS = ("vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
          "num_key_value_heads", "hidden_act", "rms_norm_eps", "max_position_embeddings",
          "original_max_position_embeddings", "bos_token_id", "eos_token_id", "pad_token_id",
          "tie_word_embeddings", "attention_dropout", "embd_pdrop", "resid_pdrop")
#: the CLIP frames' sizes (two frames each), the last one pixel tall
CLIP_SIZES = [(480, 640), (517, 333), (37, 500), (336, 336), (1, 5)]
#: the dtypes the CLIP tower runs in
TOWER_DTYPES = (torch.float32, torch.bfloat16)
#: the ``CLIPVisionConfig`` fields the pinned tower is built from
CLIP_FIELDS = ("hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads", "image_size",
               "patch_size", "hidden_act", "layer_norm_eps", "projection_dim")


def phi3_cases() -> list[tuple[Phi3ForCausalLM, dict]]:
    """For each of :data:`PHI3_CASES`: our Phi-3 (the tiny preset at that window, seeded) and its case (the
    official config, the tensors, ``inputs_embeds``, eager attention)."""
    got = []
    for k, (window, length) in enumerate(PHI3_CASES):
        p = replace(get_preset("tiny"), sliding_window=window)
        torch.manual_seed(k)
        model = Phi3ForCausalLM(phi3_config(p)).eval()
        x = torch.randn(1, length, p.llm_hidden, generator=torch.Generator().manual_seed(k))
        official = {f: getattr(model.config, f) for f in FIELDS} | {"rope_theta": 10000.0,
                                                                    "sliding_window": window}
        got.append((model, {"config": official, "state": model.state_dict(), "x": x, "attn": "eager"}))
    return got


def clip_cases() -> list[list[np.ndarray]]:
    rng = np.random.default_rng(7)
    return [[rng.integers(0, 256, (*hw, 3), dtype=np.uint8) for _ in range(2)] for hw in CLIP_SIZES]


def tower_cases() -> list[tuple[CLIPVisionModel, dict]]:
    """For each of :data:`TOWER_DTYPES`: the tiny preset's CLIP tower (VideoGLaMM's ``CLIPVisionModel``,
    seeded, in that dtype) and its case for ``clip_vision_official.py`` (its tensors, with a zero projection,
    and pixels)."""
    got = []
    for dtype in TOWER_DTYPES:
        torch.manual_seed(0)
        model = CLIPVisionModel(clip_config(get_preset("tiny"))).eval()
        for layer in model.encoder.layers:   # peaked [CLS] rows, as CLIP's (transformers 5: no vision_model)
            layer.self_attn.q_proj.weight.data.mul_(4.0)
        model = model.to(dtype)
        c = model.config
        state = {**{f"vision_model.{k}": v for k, v in model.state_dict().items()},   # 4.41's names
                 "visual_projection.weight": torch.zeros(c.projection_dim, c.hidden_size, dtype=dtype)}
        pixels = torch.randn(2, 3, c.image_size, c.image_size, generator=torch.Generator().manual_seed(3))
        got.append((model, {"config": {f: getattr(c, f) for f in CLIP_FIELDS}, "state": state,
                            "pixels": pixels.to(dtype), "hook": -1}))
    return got


@functools.cache
def official_side() -> SimpleNamespace:
    """``phi3``: (our models, their cases, the official results); ``clip``: (the frames, the official
    results); ``towers``: (our CLIP towers, their cases, the official results)."""
    phi3, clip, towers = phi3_cases(), clip_cases(), tower_cases()
    with tempfile.TemporaryDirectory(prefix="videoglamm-pin-") as tmp:
        tmp = Path(tmp)
        torch.save([case for _, case in phi3], tmp / "phi3.pt")
        torch.save(clip, tmp / "clip.pt")
        torch.save([case for _, case in towers], tmp / "towers.pt")
        (tmp / "jobs.json").write_text(json.dumps([
            ["phi3_official.py", str(tmp / "phi3.pt"), str(tmp / "phi3-out.pt")],
            ["clip_processor_official.py", str(tmp / "clip.pt"), str(tmp / "clip-out.pt")],
            ["clip_vision_official.py", str(tmp / "towers.pt"), str(tmp / "towers-out.pt")]]))
        run_pinned("videoglamm", "batch.py", str(tmp / "jobs.json"))
        return SimpleNamespace(
            phi3=([m for m, _ in phi3], [c for _, c in phi3],
                  torch.load(tmp / "phi3-out.pt", weights_only=False)),
            clip=(clip, torch.load(tmp / "clip-out.pt", weights_only=False)),
            towers=([m for m, _ in towers], [c for _, c in towers],
                    torch.load(tmp / "towers-out.pt", weights_only=False)))
