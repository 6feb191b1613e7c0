"""The released GLaMM-RefSeg checkpoint layout: key mapping and the loader (the writer is
:mod:`litelvlm.glamm.checkpoint_writer`).

Details: docs/grounding.md (``litelvlm.glamm.checkpoint``).
"""

from __future__ import annotations

import logging
import re
from dataclasses import replace
from pathlib import Path

import torch
from safetensors import safe_open

from ..errors import LiteLVLMError
from ..models.checkpoint_keys import convert_key, template_regex
from ..models.model_folder import check_model_folder, weight_files
from .build import build_glamm
from .config import ARCHS, GlammArch, with_vocab
from .folder import FOLDER
from .tokenizer import load_tokenizer

log = logging.getLogger(__name__)

#: (segment_anything key prefix, transformers SamModel key prefix); ``{a}``/``{b}`` are integers.
#: Ordered most specific first; a template without a trailing dot must match the whole key.
SAM_KEY_PAIRS: tuple[tuple[str, str], ...] = (
    ("image_encoder.patch_embed.proj.", "vision_encoder.patch_embed.projection."),
    ("image_encoder.blocks.{a}.norm{b}.", "vision_encoder.layers.{a}.layer_norm{b}."),
    ("image_encoder.blocks.{a}.", "vision_encoder.layers.{a}."),
    ("image_encoder.neck.0.", "vision_encoder.neck.conv1."),
    ("image_encoder.neck.1.", "vision_encoder.neck.layer_norm1."),
    ("image_encoder.neck.2.", "vision_encoder.neck.conv2."),
    ("image_encoder.neck.3.", "vision_encoder.neck.layer_norm2."),
    ("image_encoder.pos_embed", "vision_encoder.pos_embed"),
    ("prompt_encoder.pe_layer.positional_encoding_gaussian_matrix",
     "prompt_encoder.shared_embedding.positional_embedding"),
    ("prompt_encoder.point_embeddings.", "prompt_encoder.point_embed."),
    ("prompt_encoder.mask_downscaling.0.", "prompt_encoder.mask_embed.conv1."),
    ("prompt_encoder.mask_downscaling.1.", "prompt_encoder.mask_embed.layer_norm1."),
    ("prompt_encoder.mask_downscaling.3.", "prompt_encoder.mask_embed.conv2."),
    ("prompt_encoder.mask_downscaling.4.", "prompt_encoder.mask_embed.layer_norm2."),
    ("prompt_encoder.mask_downscaling.6.", "prompt_encoder.mask_embed.conv3."),
    ("prompt_encoder.not_a_point_embed.", "prompt_encoder.not_a_point_embed."),
    ("prompt_encoder.no_mask_embed.", "prompt_encoder.no_mask_embed."),
    ("mask_decoder.transformer.layers.{a}.norm{b}.", "mask_decoder.transformer.layers.{a}.layer_norm{b}."),
    ("mask_decoder.transformer.norm_final_attn.", "mask_decoder.transformer.layer_norm_final_attn."),
    ("mask_decoder.transformer.", "mask_decoder.transformer."),
    ("mask_decoder.output_upscaling.0.", "mask_decoder.upscale_conv1."),
    ("mask_decoder.output_upscaling.1.", "mask_decoder.upscale_layer_norm."),
    ("mask_decoder.output_upscaling.3.", "mask_decoder.upscale_conv2."),
    ("mask_decoder.output_hypernetworks_mlps.{a}.layers.0.",
     "mask_decoder.output_hypernetworks_mlps.{a}.proj_in."),
    ("mask_decoder.output_hypernetworks_mlps.{a}.layers.1.",
     "mask_decoder.output_hypernetworks_mlps.{a}.layers.0."),
    ("mask_decoder.output_hypernetworks_mlps.{a}.layers.2.",
     "mask_decoder.output_hypernetworks_mlps.{a}.proj_out."),
    ("mask_decoder.iou_prediction_head.layers.0.", "mask_decoder.iou_prediction_head.proj_in."),
    ("mask_decoder.iou_prediction_head.layers.1.", "mask_decoder.iou_prediction_head.layers.0."),
    ("mask_decoder.iou_prediction_head.layers.2.", "mask_decoder.iou_prediction_head.proj_out."),
    ("mask_decoder.iou_token.", "mask_decoder.iou_token."),
    ("mask_decoder.mask_tokens.", "mask_decoder.mask_tokens."),
)

#: (GLaMM key prefix, GlammModel key prefix) outside SAM.
GLAMM_KEY_PAIRS: tuple[tuple[str, str], ...] = (
    ("model.embed_tokens.", "llava.model.language_model.embed_tokens."),
    ("model.layers.", "llava.model.language_model.layers."),
    ("model.norm.", "llava.model.language_model.norm."),
    ("lm_head.", "llava.lm_head."),
    ("model.mm_projector.0.", "llava.model.multi_modal_projector.linear_1."),
    ("model.mm_projector.2.", "llava.model.multi_modal_projector.linear_2."),
    ("model.text_hidden_fcs.", "text_hidden_fcs."),
)
SAM_PREFIX = "model.grounding_encoder."
STALE_KEY = re.compile(r"(^|\.)rotary_emb\.inv_freq$|(^|\.)pixel_(mean|std)$")
#: (checkpoint key prefix, what it is): GLaMM modules ``GlammModel`` does not have; their tensors are
#: dropped and counted (see docs/grounding.md).
IGNORED_PREFIXES: tuple[tuple[str, str], ...] = (
    ("model.region_encoder.", "region encoder"),
    ("model.vision_tower.vision_tower.", "CLIP vision tower"),
    ("model.vision_tower.text_tower.", "CLIP text tower"),
)
TIED_SAM_KEY = "sam.shared_image_embedding.positional_embedding"
SAM_PE_KEY = "sam.prompt_encoder.shared_embedding.positional_embedding"


_SAM_FWD = [(template_regex(o), h) for o, h in SAM_KEY_PAIRS]
_SAM_INV = [(template_regex(h), o) for o, h in SAM_KEY_PAIRS]


def sam_key_to_hf(key: str) -> str | None:
    """A segment_anything key (``image_encoder.blocks.0.norm1.weight``) as transformers' SamModel names it."""
    return convert_key(key, _SAM_FWD)


def sam_key_from_hf(key: str) -> str | None:
    """Inverse of ``sam_key_to_hf``."""
    return convert_key(key, _SAM_INV)


def glamm_key_to_model(key: str) -> str | None:
    """A GLaMM-RefSeg checkpoint key as ``GlammModel`` names it (None: not part of the layout)."""
    if key.startswith(SAM_PREFIX):
        sub = sam_key_to_hf(key[len(SAM_PREFIX):])
        return None if sub is None else "sam." + sub
    return convert_key(key, [(template_regex(g), m) for g, m in GLAMM_KEY_PAIRS])


def model_key_to_glamm(key: str) -> str | None:
    """A ``GlammModel`` key in the GLaMM layout (None for CLIP-tower and tied keys, which it lacks)."""
    if key.startswith("llava.model.vision_tower.") or key == TIED_SAM_KEY:
        return None
    if key.startswith("sam."):
        sub = sam_key_from_hf(key[4:])
        return None if sub is None else SAM_PREFIX + sub
    return convert_key(key, [(template_regex(m), g) for g, m in GLAMM_KEY_PAIRS])


# -- config ----------------------------------------------------------------------------------
def arch_from_config(cfg: dict, vocab_size: int) -> GlammArch:
    """The ``GlammArch`` a GLaMM ``config.json`` describes (Llama sizes; SAM ViT-H unless the config
    carries a ``litelvlm_arch`` entry, as the tiny test checkpoints do)."""
    if "litelvlm_arch" in cfg:
        d = dict(cfg["litelvlm_arch"])
        d["sam_global_attn"] = tuple(d.get("sam_global_attn", ()))
        try:
            return with_vocab(GlammArch(**d), vocab_size)
        except TypeError as e:   # a key GlammArch lacks, or one it needs left out
            raise LiteLVLMError(f"config.json's litelvlm_arch does not describe a GLaMM: {e}") from None
    base = ARCHS["glamm-7b"]
    try:
        return replace(base, llm_hidden=cfg["hidden_size"], llm_layers=cfg["num_hidden_layers"],
                       llm_intermediate=cfg["intermediate_size"], llm_heads=cfg["num_attention_heads"],
                       llm_kv_heads=cfg.get("num_key_value_heads") or cfg["num_attention_heads"],
                       rms_norm_eps=cfg.get("rms_norm_eps", base.rms_norm_eps),
                       rope_theta=cfg.get("rope_theta", base.rope_theta),
                       max_positions=cfg.get("max_position_embeddings", base.max_positions),
                       prompt_dim=cfg.get("out_dim", base.prompt_dim),
                       feature_layer=cfg.get("mm_vision_select_layer", base.feature_layer),
                       vocab_size=vocab_size)
    except KeyError as e:
        raise LiteLVLMError(f"config.json lacks the LLM size {e.args[0]!r}") from e


# -- reading ---------------------------------------------------------------------------------
def _weight_files(path: Path) -> list[Path]:
    """The folder's weights: safetensors or torch ``.bin``, sharded or not (:func:`model_folder.weight_files`,
    its one wording)."""
    return weight_files(path, ("safetensors", "bin"))


def _read_file(f: Path, dtype: torch.dtype | None) -> dict[str, torch.Tensor]:
    """One weight file's tensors, floating ones converted to ``dtype``, one tensor at a time: the file
    is memory-mapped, so a float32 file becomes a bfloat16 model without a float32 copy in memory.
    Every tensor is a copy in memory (the model never holds pages of a file that may change later)."""
    def conv(t: torch.Tensor) -> torch.Tensor:
        if dtype is not None and t.is_floating_point():
            return t.to(dtype, copy=True)
        return t.clone()

    if f.suffix == ".safetensors":
        with safe_open(str(f), framework="pt", device="cpu") as fh:
            return {k: conv(fh.get_slice(k)[:]) for k in fh.keys()}  # noqa: SIM118 (no __iter__)
    sd = torch.load(f, map_location="cpu", weights_only=True, mmap=True)
    return {k: conv(sd.pop(k)) for k in list(sd)}


def read_state_dict(path: str | Path, dtype: torch.dtype | None = None) -> dict[str, torch.Tensor]:
    """All tensors of a checkpoint folder (safetensors or torch ``.bin``, sharded or not); with
    ``dtype``, floating tensors are converted as they are read (peak memory: the converted model)."""
    out: dict[str, torch.Tensor] = {}
    for f in _weight_files(Path(path)):
        try:
            out.update(_read_file(f, dtype))
        except Exception as e:  # corrupt or truncated file
            raise LiteLVLMError(f"could not read checkpoint file {f}: {e}") from e
    return out


def split_ignored(sd: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], dict[str, int]]:
    """(``sd`` without the tensors of ``IGNORED_PREFIXES``, {what: how many tensors were dropped})."""
    kept, ignored = {}, {}
    for k, v in sd.items():
        label = next((what for prefix, what in IGNORED_PREFIXES if k.startswith(prefix)), None)
        if label is None:
            kept[k] = v
        else:
            ignored[label] = ignored.get(label, 0) + 1
    return kept, ignored


def _report_ignored(ignored: dict[str, int], where: str) -> None:
    if ignored:
        log.info("%s: ignored %d checkpoint tensor(s) GlammModel has no use for (%s)", where,
                 sum(ignored.values()), ", ".join(f"{what}: {n}" for what, n in ignored.items()))


def convert_state_dict(sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """GLaMM-layout tensors renamed for ``GlammModel`` (stale keys and ``IGNORED_PREFIXES`` dropped;
    unknown keys raise)."""
    out, unexpected = {}, []
    for k, v in split_ignored(sd)[0].items():
        if STALE_KEY.search(k):
            continue
        new = glamm_key_to_model(k)
        if new is None:
            unexpected.append(k)
        else:
            out[new] = v
    if unexpected:
        raise LiteLVLMError(f"unexpected key(s) in the GLaMM checkpoint: {_names(unexpected)}")
    if SAM_PE_KEY in out:
        out[TIED_SAM_KEY] = out[SAM_PE_KEY]
    return out


def _names(keys: list[str], n: int = 8) -> str:
    keys = sorted(keys)
    return ", ".join(keys[:n]) + (f" ... ({len(keys)} in all)" if len(keys) > n else "")


def load_glamm_weights(model, sd: dict[str, torch.Tensor], where: str = "the checkpoint",
                       assign: bool = False) -> dict[str, int]:
    """Load GLaMM-layout tensors into ``model`` strictly (except the CLIP tower, which comes from CLIP);
    ``assign``: the tensors become the parameters (a ``meta`` model, no copy).

    Returns {what: count} of the tensors dropped by ``IGNORED_PREFIXES`` (also logged in one line)."""
    sd, ignored = split_ignored(sd)
    _report_ignored(ignored, where)
    conv = convert_state_dict(sd)
    expected = {k for k in model.state_dict() if not k.startswith("llava.model.vision_tower.")}
    missing = sorted(expected - set(conv))
    unexpected = sorted(set(conv) - expected)
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"missing key(s): {_names([model_key_to_glamm(k) or k for k in missing])}")
        if unexpected:
            parts.append(f"unexpected key(s): {_names(unexpected)}")
        raise LiteLVLMError(f"{where} does not have the GLaMM-RefSeg layout; " + "; ".join(parts))
    own = model.state_dict()
    bad = [f"{model_key_to_glamm(k) or k} {tuple(v.shape)} (expected {tuple(own[k].shape)})"
           for k, v in conv.items() if tuple(v.shape) != tuple(own[k].shape)]
    if bad:
        raise LiteLVLMError(f"{where}: tensor shapes do not match the architecture: {'; '.join(bad[:5])}")
    model.load_state_dict(conv, strict=False, assign=assign)
    return ignored


def load_glamm_checkpoint(path: str | Path, device: str | torch.device = "cpu",
                          dtype: torch.dtype = torch.float32, config: dict | None = None):
    """(GlammModel, tokenizer) from a GLaMM-RefSeg folder; the CLIP tower stays random until shared;
    ``config``: the folder's config.json as its resolution read it
        (:func:`litelvlm.registry.families.resolve`).

    The model's ``ignored_checkpoint_tensors`` is {what: count} of the checkpoint tensors dropped
    (``IGNORED_PREFIXES``: the region encoder in the released checkpoint), logged in one INFO line."""
    path = Path(path)
    if not path.is_dir():
        raise LiteLVLMError(f"GLaMM checkpoint folder {path} does not exist")
    # config types and tokenizer files, before transformers reads them
    cfg = check_model_folder(path, FOLDER, config=config)
    tokenizer = load_tokenizer(path)
    sd, ignored = split_ignored(read_state_dict(path, dtype))
    _report_ignored(ignored, str(path))
    emb = sd.get("model.embed_tokens.weight")
    if emb is None:
        raise LiteLVLMError(f"the checkpoint in {path} has no model.embed_tokens.weight (missing key)")
    if emb.shape[0] < len(tokenizer):
        raise LiteLVLMError(f"the tokenizer in {path} has {len(tokenizer)} tokens but the embedding only "
                            f"{emb.shape[0]} rows")
    arch = arch_from_config(cfg, emb.shape[0])
    model = build_glamm(arch, device="meta", dtype=dtype)
    # the checkpoint's tensors become the model's (moved to ``device``): one copy of the weights
    load_glamm_weights(model, {k: v.to(device) for k, v in sd.items()}, where=str(path), assign=True)
    del sd
    _materialize_rest(model, device)
    model.ignored_checkpoint_tensors = ignored
    return model.eval().requires_grad_(False), tokenizer


def _materialize_rest(model, device) -> None:
    """Give storage on ``device`` to what the checkpoint does not hold (the CLIP tower, replaced when a
    CLIP backend's tower is shared) and rebuild the non-persistent buffers (RoPE frequencies, position
    ids)."""
    for module in model.modules():
        if any(t.is_meta for t in (*module.parameters(recurse=False), *module.buffers(recurse=False))):
            module.to_empty(device=device, recurse=False)
    _reinit_buffers(model, device)


def _reinit_buffers(model, device) -> None:
    """Rebuild the non-persistent buffers ``to_empty`` left uninitialised (RoPE frequencies; the CLIP
    tower's position ids are replaced when the CLIP backend's tower is shared)."""
    lm = model.language_model
    lm.rotary_emb = type(lm.rotary_emb)(config=lm.config).to(device)  # float32 frequencies
    emb = model.vision_tower.embeddings
    if hasattr(emb, "position_ids"):
        emb.position_ids = torch.arange(emb.position_ids.shape[-1], device=device)[None]
