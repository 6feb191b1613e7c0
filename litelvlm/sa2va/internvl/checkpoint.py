"""Random-weight Sa2VA-InternVL3 checkpoints in the released folder layout.

A released folder (``ByteDance/Sa2VA-InternVL3-2B``) is what ``tools/convert_to_hf.py`` (bytedance/Sa2VA
@9832e1a, L135-168, L173, L192) writes: ``Sa2VAChatModel.save_pretrained`` -- the tensor names of its module
tree, the InternVL names (``mllm.model.`` dropped, SAM 2's ``.gamma`` as ``.g_weight``):

* ``vision_model.*`` (InternViT, ``modeling_intern_vit.py``), ``mlp1.{0,1,3}.*``, ``language_model.model.*``
  and ``language_model.lm_head.weight`` (``Qwen2ForCausalLM``);
* ``grounding_encoder.sam2_model.*`` and ``text_hidden_fcs.{0,2}.*``, as on Sa2VA-Qwen2.5-VL
  (:mod:`litelvlm.sa2va.checkpoint`: SAM 2.0 Hiera-L with its tracking tensors);

``config.json`` (:func:`litelvlm.sa2va.internvl.config.released_config`), the InternVL3 tokenizer with Sa2VA's
five tokens (``model.mllm.tokenizer.save_pretrained``) and the model code. A random folder's tokenizer is the
Qwen stand-in (:mod:`litelvlm.qwen.tokenizer`) with InternVL's nine tokens and Sa2VA's five at the preset's
ids; its ``config.json`` records ``litelvlm_random``. :mod:`.loading` reads any such folder back.
"""

from __future__ import annotations

from pathlib import Path

import torch
from transformers import InternVLForConditionalGeneration

from ...models.random_models import write_json, write_weights
from ...models.random_weights import default_dtype, fast_fill, init_plan, resolve_fill, skip_init_unless_kept
from ...qwen.checkpoint import _write_tokenizer
from ...qwen.tokenizer import stand_in_tokenizer
from ...sam2.config import sam2_size
from ...sam2.keys import fill_random, sam2_from_hf
from ..checkpoint import FCS_PREFIX, SAM_PREFIX, sam2_tracking_shapes
from ..config import EXTRA_TOKENS, sam2_config
from ..random_folder import add_extra_tokens, random_dir, random_note
from ..sam2_head import Sa2VASam2, TextHiddenFcs
from .config import IMG_CONTEXT, INTERNVL_TOKENS, InternVLPreset, get_preset, released_config
from .vision import internvl_config, to_released

#: the presets whose weights are each module's own initialisation under ``fill="auto"`` (pinned by tests)
TEST_PRESETS = ("internvl3-tiny",)


def preset_dtype(p: InternVLPreset) -> torch.dtype:
    """The dtype a preset's random checkpoint is written in (bfloat16 for the released size)."""
    return getattr(torch, p.dtype)


def build_internvl(preset: str | InternVLPreset, seed: int = 0, dtype: torch.dtype | None = None,
                   device: str | torch.device = "cpu", fill: str = "auto") -> tuple:
    """A random Sa2VA-InternVL3: (transformers' ``InternVLForConditionalGeneration``, ``text_hidden_fcs``, SAM
    2, its tracking tensors). ``fill`` ``"auto"``: each module's initialisation for a test preset (the vision
    tower's [CLS] and position embeddings drawn, which transformers zeroes), a fast fill of the full size."""
    p = get_preset(preset)
    fast = resolve_fill(fill, p.name not in TEST_PRESETS) == "fast"
    dtype = preset_dtype(p) if dtype is None else dtype
    dev = torch.device(device)
    config = internvl_config(released_config(p), p.token_id(IMG_CONTEXT))
    if dev.type != "meta":
        torch.manual_seed(seed)
    with default_dtype(dtype), dev, skip_init_unless_kept(fast, dev):
        model = InternVLForConditionalGeneration(config)
    if fast and dev.type != "meta":
        fast_fill(init_plan(model, config.text_config.initializer_range), seed,
                  desc=f"random Sa2VA-InternVL3 {p.name}: filling")
    elif dev.type != "meta":
        emb = model.model.vision_tower.embeddings
        with torch.no_grad():
            for t in (emb.cls_token, emb.position_embeddings):
                t.normal_(0.0, 0.02)
    size = sam2_size(p.sam2)
    with default_dtype(dtype), dev, skip_init_unless_kept(fast, dev):
        fcs = TextHiddenFcs(p.hidden, size.d_model).eval().requires_grad_(False)
        sam2 = Sa2VASam2(sam2_config(size, p.sam_size), p.sam_size).eval().requires_grad_(False)
    tracking = {k: torch.empty(s, dtype=dtype, device=dev) for k, s in sam2_tracking_shapes(size).items()}
    if dev.type != "meta":
        fill_random((fcs.state_dict(keep_vars=True), sam2.model.state_dict(keep_vars=True), tracking), sam2,
                    seed, fast)
    sam2.sam2_size, sam2.tracking = size, tracking
    return model.eval().requires_grad_(False), fcs, sam2, tracking


def internvl_tensors(model, fcs: TextHiddenFcs, sam2: Sa2VASam2, tracking: dict) -> dict[str, torch.Tensor]:
    """Every tensor under the released names, in the module order of ``Sa2VAChatModel`` (the LVLM,
    ``grounding_encoder``, ``text_hidden_fcs``)."""
    out = to_released({k: v.detach() for k, v in model.state_dict().items()})
    out.update({SAM_PREFIX + k: v.detach() for k, v in sam2_from_hf(sam2.model.state_dict()).items()})
    out.update({SAM_PREFIX + k: v.detach() for k, v in tracking.items()})
    out.update({FCS_PREFIX + k: v.detach() for k, v in fcs.state_dict().items()})
    return out


def random_tokenizer(preset: str | InternVLPreset):
    """A random folder's tokenizer: the Qwen stand-in at the preset's ids, InternVL's nine tokens and Sa2VA's
    five after its special ones (``internvl.py`` L61), no chat template (``predict_forward`` writes its
    prompt itself)."""
    p = get_preset(preset)
    tok = stand_in_tokenizer(p, INTERNVL_TOKENS, None)
    return add_extra_tokens(tok, {t: p.token_id(t) for t in EXTRA_TOKENS}, p.vocab_size,
                            f"{p.family} preset {p.name!r}")


def random_config(p: InternVLPreset, seed: int, fill: str, device) -> dict:
    """A random folder's ``config.json``: :func:`~.config.released_config` with the ``litelvlm_random``
    record (:func:`litelvlm.sa2va.random_folder.random_note`, then the tile count)."""
    return random_note(released_config(p), p.name, seed, fill, device, p.sam2, p.sam_size,
                       max_tiles=p.max_tiles)


def save_random_internvl(path: str | Path, preset: str | InternVLPreset = "internvl3-tiny", seed: int = 0,
                         device: str | torch.device = "cpu", max_shard_bytes: int | None = -1,
                         fill: str = "auto") -> Path:
    """Build a random Sa2VA-InternVL3 of ``preset`` and write it in the released layout (module docstring)."""
    p = get_preset(preset)
    fill = resolve_fill(fill, p.name not in TEST_PRESETS)
    model, fcs, sam2, tracking = build_internvl(p, seed=seed, device=device, fill=fill)
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    _write_tokenizer(random_tokenizer(p), path)
    write_weights(internvl_tensors(model, fcs, sam2, tracking), path,
                  p.max_shard_bytes if max_shard_bytes == -1 else max_shard_bytes)
    write_json(path / "config.json", random_config(p, seed, fill, device))
    return path


def random_internvl_dir(preset: str, seed: int = 0, device: str | torch.device = "cpu") -> Path:
    """The random Sa2VA-InternVL3 of ``preset`` and ``seed``, written once under the cache folder."""
    p = get_preset(preset)
    return random_dir(p, seed, device, save_random_internvl, p.name not in TEST_PRESETS)


__all__ = ["TEST_PRESETS", "build_internvl", "internvl_tensors", "preset_dtype", "random_config",
           "random_internvl_dir", "random_tokenizer", "save_random_internvl"]
