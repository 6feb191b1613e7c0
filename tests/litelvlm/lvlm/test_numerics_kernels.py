"""``--attn`` on every family (``litelvlm.lvlm.numerics``): the pipeline applies the kernel at load to the
LLM, its vision tower / CLIP and SAM and records the LLM's own as ``llm_attn_implementation``; in float32 on
a CPU, SDPA gives the LLM logits of eager attention within rounding, masks that differ in a few pixels at
most, and the same tokens for the methods that read attention weights (recomputed outside the kernel)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch
from PIL import Image

from litelvlm.clip.attention import NAME as CLIP_EAGER
from litelvlm.lvlm.numerics import Numerics, set_attention
from litelvlm.registry.families import load_pipeline

MODELS = ["tiny-random:0", "sa2va-tiny-random:0"]
SENTENCE = "the dog on the left"
#: at most this share of a mask's pixels may differ between the two kernels
MAX_PIXEL_SHARE = 1e-3


def _switch(pipe, attn: str) -> None:
    """The loaded pipeline's kernels switched to ``attn`` (same weights)."""
    pipe.numerics = replace(pipe.numerics, attn=attn)
    if pipe.family == "glamm":
        set_attention(attn, pipe.model.llava, pipe.model.sam, pipe.clip.modules(), llm=pipe.language_model,
                      clip_softmax=pipe.numerics.clip_softmax)
    else:
        pipe.apply_attention()


def _lm_head(pipe):
    return pipe.model.llava.lm_head if pipe.family == "glamm" else pipe.lm_head


def _implementations(pipe) -> set[str]:
    """The attention implementation of every config of the LLM, its vision tower, the CLIP and SAM."""
    if pipe.family == "glamm":
        models = [pipe.model.llava, pipe.model.sam, pipe.clip.modules()]
    else:
        models = [pipe.qwen, pipe.sam2.model, pipe.clip.modules()]
    configs = [c for model in models for c in (model.config, *[getattr(model.config, k, None)
                                                               for k in model.config.sub_configs])]
    return {c._attn_implementation for c in configs if c is not None and c._attn_implementation is not None}


@pytest.fixture(scope="module", params=MODELS)
def runs(request):
    """(pipeline, {attn: (LLM logits, masks, {method: kept indices})}): loaded with sdpa, then switched to
    eager."""
    pipe = load_pipeline(request.param, dtype=torch.float32, numerics=Numerics(attn="sdpa"))
    assert pipe.describe()["llm_attn_implementation"] == "sdpa" and _implementations(pipe) == {"sdpa"}
    image = Image.fromarray(np.random.default_rng(3).integers(0, 255, (150, 220, 3), dtype=np.uint8))
    out = {}
    for attn in ("sdpa", "eager"):
        _switch(pipe, attn)
        prep = pipe.prepare(image, [SENTENCE])
        n = pipe.num_visual(prep)
        with torch.no_grad():
            final, _ = pipe.run_llm(prep, pipe.visual_tokens(prep))
            masks = pipe.ground(prep, "none").masks
            kept = {m: pipe.ground(prep, m, n // 4).kept_indices for m in ("fastv", "sparsevlm")}
        out[attn] = (_lm_head(pipe)(final), masks, kept)
    return pipe, out


def test_the_pipeline_records_the_kernel_its_llm_runs(runs):
    pipe, _ = runs   # switched to eager last
    assert pipe.describe()["llm_attn_implementation"] == "eager" == pipe.describe()["numerics"]["attn"]
    assert _implementations(pipe) == {"eager", CLIP_EAGER}   # CLIP's: 4.x's kernel (litelvlm.clip.attention)


def test_sdpa_gives_eager_logits_and_masks_in_float32(runs):
    pipe, out = runs
    (sdpa_logits, sdpa_masks, _), (eager_logits, eager_masks, _) = out["sdpa"], out["eager"]
    torch.testing.assert_close(sdpa_logits, eager_logits, rtol=1.3e-6, atol=1e-5)
    differing = int((sdpa_masks != eager_masks).sum())
    print(f"{pipe.name}: {differing} of {sdpa_masks.numel()} mask pixels differ between sdpa and eager")
    assert differing <= MAX_PIXEL_SHARE * sdpa_masks.numel()


def test_methods_reading_attention_keep_the_same_tokens_under_both(runs):
    _, out = runs
    for method, kept in out["sdpa"][2].items():
        assert torch.equal(kept, out["eager"][2][method]), method
