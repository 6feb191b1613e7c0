"""The official Sa2VA-InternVL3 code, imported for tests only (never by the library).

bytedance/Sa2VA @9832e1a, ``projects/sa2va/hf/models/`` (a copy in ``../shared/official/Sa2VA``), imported as
it is; three imports are stubbed, none of which the tests run:

* ``peft`` (``modeling_sa2va_chat.py`` L18: ``LoraConfig``, ``get_peft_model``, read only by
  ``wrap_backbone_lora`` / ``wrap_llm_lora`` when the config asks for LoRA, which no released config does);
* ``einops`` (``modeling_intern_vit.py`` L12, ``modeling_internlm2.py``: ``rearrange``, read only on the
  flash-attention path, which is off without ``flash_attn``: ``has_flash_attn`` False);
* ``.modeling_phi3`` (``modeling_sa2va_chat.py`` L17): it imports ``transformers.modeling_attn_mask_utils``,
  which transformers 5 lacks; ``Phi3ForCausalLM`` is built only for a Phi-3 LLM (L130-131), not InternVL3's
  Qwen2.

The official model is ``Sa2VAChatModel`` built by its own ``__init__`` from the checkpoint's ``config.json``
(``Sa2VAChatConfig``). Its ``SAM2()`` (``sam2.py`` L76-132) hard-codes the released Hiera-L at 1024 px; for
the tiny preset the same official classes are built at the tiny sizes instead (:func:`tests.sa2va_official.
tiny_sam2`: ``sam2.py`` here is byte-identical to ``models_qwen2_5_vl/sam2.py``, checked by
:func:`same_sam2`), wrapped in the official ``SAM2`` class, whose methods run as they are. The CPU-only steps
around CUDA are those of :mod:`tests.sa2va_official` (:func:`~tests.sa2va_official.on_cpu`).
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import json
import sys
import types
from pathlib import Path

import torch

from tests import sa2va_official as qwen_official

CODE = qwen_official.ROOT / "projects" / "sa2va" / "hf" / "models"
PACKAGE = "sa2va_official_internvl"
#: the imports stubbed (module docstring), each with the names the official modules import from it
STUBS = {"peft": ("LoraConfig", "get_peft_model"), "einops": ("rearrange",),
         f"{PACKAGE}.modeling_phi3": ("Phi3ForCausalLM",)}


def available() -> bool:
    return (CODE / "modeling_sa2va_chat.py").is_file() and (CODE / "modeling_intern_vit.py").is_file()


def same_sam2() -> bool:
    """Whether ``sam2.py`` here is the Sa2VA-Qwen2.5-VL folder's, byte for byte."""
    return (CODE / "sam2.py").read_bytes() == (qwen_official.CODE / "sam2.py").read_bytes()


def official(module: str):
    """``modeling_sa2va_chat``, ``modeling_intern_vit``, ``configuration_sa2va_chat``, ``templates`` or
    ``sam2`` of the official folder, imported as-is, the stubs of the module docstring in place while it
    imports (``peft`` and ``einops`` taken out again after: transformers looks for the real packages)."""
    if PACKAGE not in sys.modules:
        pkg = types.ModuleType(PACKAGE)
        pkg.__path__ = [str(CODE)]
        sys.modules[PACKAGE] = pkg
    added = []
    for name, attrs in STUBS.items():
        if name in sys.modules or not (name.startswith(PACKAGE) or importlib.util.find_spec(name) is None):
            continue   # imported already, or installed (then the real package)
        stub = types.ModuleType(name)
        for attr in attrs:
            setattr(stub, attr, None)
        sys.modules[name] = stub
        added.append(name)
    try:
        with contextlib.redirect_stdout(None):   # "FlashAttention is not installed."
            return importlib.import_module(f"{PACKAGE}.{module}")
    finally:
        for name in added:
            if not name.startswith(PACKAGE):
                del sys.modules[name]


def tiny_sam2_wrapper(size, image_size: int):
    """The official ``SAM2`` class around the official ``SAM2VideoPredictor`` at a project SAM 2 size: what
    ``SAM2.__init__`` sets (``sam2_model``, ``hidden_dim``, ``img_mean``, ``img_std``, L127-134), the
    predictor built at ``size`` instead of Hiera-L."""
    cls = official("sam2").SAM2
    wrapper = cls.__new__(cls)
    torch.nn.Module.__init__(wrapper)
    wrapper.sam2_model = qwen_official.tiny_sam2(size, image_size)
    wrapper.hidden_dim = wrapper.sam2_model.hidden_dim
    wrapper.img_mean, wrapper.img_std = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
    return wrapper


def official_model_of(config, sam2_size, sam_image_size: int, vision_model=None, language_model=None):
    """``Sa2VAChatModel(config, vision_model, language_model, use_flash_attn=False)`` (L98-172), its SAM 2 at
    ``sam2_size`` (module docstring)."""
    chat = official("modeling_sa2va_chat")
    saved, chat.SAM2 = chat.SAM2, lambda: tiny_sam2_wrapper(sam2_size, sam_image_size)
    try:
        return chat.Sa2VAChatModel(config, vision_model=vision_model, language_model=language_model,
                                   use_flash_attn=False)
    finally:
        chat.SAM2 = saved


def official_model(folder: Path, sam2_size, sam_image_size: int):
    """``Sa2VAChatModel`` of a checkpoint folder's ``config.json`` (its SAM 2 at ``sam2_size``), its tensors
    loaded strictly (every name of the folder a parameter or buffer of the official tree, none missing), in
    eval mode."""
    from safetensors.torch import load_file

    cfg = json.loads((folder / "config.json").read_text())
    with contextlib.redirect_stdout(None):   # Sa2VAChatConfig prints its arguments
        config = official("configuration_sa2va_chat").Sa2VAChatConfig(
            **{k: v for k, v in cfg.items() if k not in ("model_type", "auto_map", "litelvlm_random")})
    model = official_model_of(config, sam2_size, sam_image_size)
    model.load_state_dict(load_file(str(folder / "model.safetensors")), strict=True)
    return model.eval()


def prepared_for_generation(model, tokenizer, sam_image_size: int, dtype: torch.dtype) -> None:
    """``preparing_for_generation`` (L527-587) with one new token (``max_new_tokens``) in ``dtype``
    (``torch_dtype``: the tiny preset's), SAM 2's ``DirectResize`` at the SAM 2 size."""
    model.preparing_for_generation(tokenizer, max_new_tokens=1, torch_dtype=dtype)
    model.extra_image_processor = official("modeling_sa2va_chat").DirectResize(target_length=sam_image_size)


def recorded_predict_forward(model, tokenizer, **inputs) -> dict:
    """``predict_forward(**inputs)`` run as it is, with the keywords it hands ``self.generate`` recorded."""
    seen: dict = {}
    call = model.generate

    def generate(**kw):
        seen.update(kw)
        return call(**kw)

    model.generate = generate
    try:
        with qwen_official.on_cpu(), torch.no_grad():
            model.predict_forward(tokenizer=tokenizer, **inputs)
    finally:
        del model.generate
    return seen


def seg_states(model, pixel_values: torch.Tensor, input_ids: torch.Tensor, seg_id: int,
               visual_features: torch.Tensor | None = None) -> torch.Tensor:
    """(R, h) the final hidden states of the rows whose input is ``[SEG]`` in the official ``generate``'s
    prefill (L451-523: ``extract_feature`` or the given ``visual_features`` at the ``<IMG_CONTEXT>`` rows, the
    LLM over ``inputs_embeds`` with no position ids), read as ``predict_forward`` reads its rows
    (L751-757)."""
    from transformers import GenerationConfig

    with torch.no_grad():
        out = model.generate(pixel_values=pixel_values, input_ids=input_ids[None],
                             attention_mask=torch.ones_like(input_ids[None], dtype=torch.bool),
                             visual_features=visual_features,
                             generation_config=GenerationConfig(max_new_tokens=1, do_sample=False),
                             output_hidden_states=True, return_dict_in_generate=True)
    return out.hidden_states[0][-1][0][input_ids == seg_id]


def official_logits(model, g_pixel_values: torch.Tensor, seg_hidden: torch.Tensor, original_size,
                    num_frames: int) -> torch.Tensor:
    """(R, T, H, W) float32: ``predict_forward``'s mask step (L758-768) for each [SEG] state, before ``sigmoid
    > 0.5``: ``text_hidden_fcs``, ``get_sam2_embeddings`` of the SAM 2 pixels, ``language_embd_inference`` on
    the first ``num_frames`` frames, resized to the original (H, W)."""
    h, w = original_size
    out = []
    with qwen_official.on_cpu(), torch.no_grad(), contextlib.suppress(Warning):
        for state in model.text_hidden_fcs(seg_hidden):
            sam_states = model.grounding_encoder.get_sam2_embeddings(g_pixel_values)
            sam_states["device"] = sam_states["storage_device"] = torch.device("cpu")
            pred = model.grounding_encoder.language_embd_inference(sam_states, [state[None]] * num_frames)
            out.append(torch.nn.functional.interpolate(pred, size=(h, w), mode="bilinear",
                                                       align_corners=False)[:, 0])
    return torch.stack(out)
