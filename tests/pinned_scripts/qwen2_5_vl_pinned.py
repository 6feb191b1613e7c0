"""The pinned transformers' own Qwen2.5-VL, loaded from a written random folder, for the methods' official
sides (``hiprune_qwen_official.py``, ``vscan_qwen_official.py``, ``ivc_prune_qwen_official.py``). Imports the
pinned packages only.

The methods' official Qwen2.5-VL code is the pinned release's ``modeling_qwen2_5_vl.py`` with statements added
(HiPrune: a modified copy of it; VScan: forwards bound onto its classes; IVC-Prune: a modified copy in its
bundled transformers), so the tower's patch embedding, vision RoPE, window permutation, blocks and merger, and
the decoder's RoPE and layers, are the pinned release's own here; the added statements are transcribed in the
methods' scripts."""

import json
from pathlib import Path

import torch
from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16}


def load(folder: str, dtype: str, attn: str):
    """(model, its loading info): the folder's Qwen2.5-VL tensors (UniPixel's own left out) in the pinned
    class, cast whole to ``dtype``, with ``attn`` as its attention implementation."""
    raw = json.loads((Path(folder) / "config.json").read_text())
    raw.update(model_type="qwen2_5_vl", architectures=["Qwen2_5_VLForConditionalGeneration"])
    config = Qwen2_5_VLConfig.from_dict(raw)
    model, info = Qwen2_5_VLForConditionalGeneration.from_pretrained(
        folder, config=config, torch_dtype=DTYPES[dtype], attn_implementation=attn, output_loading_info=True)
    return model.eval(), info


def tower(model):
    """The vision tower (``model.visual`` up to 4.51, ``model.model.visual`` from 4.52)."""
    return model.visual if hasattr(model, "visual") else model.model.visual


def decoder(model):
    """The text decoder stack (``model.model`` up to 4.51, ``model.model.language_model`` from 4.52)."""
    inner = model.model
    return getattr(inner, "language_model", inner)


@torch.no_grad()
def tower_blocks(visual, pixel_values, grid_thw):
    """(the tower's output, {block: its input ``h``, ``cu_seqlens``, ``position_embeddings``},
    ``window_index``) from one forward of the pinned tower (forward pre-hooks on the blocks)."""
    seen = {}
    handles = [blk.register_forward_pre_hook(lambda m, a, kw, b=b: seen.update({b: dict(h=a[0], **kw)}),
                                             with_kwargs=True) for b, blk in enumerate(visual.blocks)]
    try:
        out = visual(pixel_values.to(visual.dtype), grid_thw=grid_thw)
    finally:
        for h in handles:
            h.remove()
    window_index, _ = visual.get_window_index(grid_thw)
    return out, seen, window_index
