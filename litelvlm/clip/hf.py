"""transformers ``CLIPModel`` backend (default: ``openai/clip-vit-large-patch14-336``)."""

from __future__ import annotations

import os
import socket
from functools import partial
from urllib.parse import urlparse

import torch
from PIL import Image
from transformers import AutoConfig, AutoImageProcessor, AutoTokenizer, CLIPModel
from transformers.models.clip.image_processing_pil_clip import CLIPImageProcessorPil

from ..errors import LiteLVLMError, UnsupportedModelError
from ..models.shared_tokenizer import shared_tokenizer
from ..switches import CLIP_PREPROCESSING, check_one_of
from . import DEFAULT_HF_MODEL
from .base import ClipBackend
from .traces import Geometry, VisionTrace

__all__ = ["DEFAULT_HF_MODEL", "HFClip", "expand2square"]



def expand2square(image: Image.Image, background: tuple[int, int, int]) -> Image.Image:
    """LLaVA's "pad" preprocessing: paste the image centred on a square of the mean colour."""
    w, h = image.size
    if w == h:
        return image
    side = max(w, h)
    out = Image.new(image.mode, (side, side), background)
    out.paste(image, ((side - w) // 2, (side - h) // 2))
    return out


def _offline_hint(name: str, reachable: bool = False) -> str:
    where = ("is not a model on the Hugging Face hub either" if reachable else
             "and the Hugging Face hub cannot be reached from here")
    return (f"model {name!r} could not be loaded: it is not a local directory, is not in the Hugging Face "
            f"cache {where}. Point --model at a local directory written by save_pretrained (config.json, "
            "model.safetensors, tokenizer and preprocessor files), or download it on a machine with "
            "network access first")


def hub_reachable(timeout: float = 3.0) -> bool:
    """Whether the Hugging Face hub answers at all (a failed name lookup returns at once); without it
    the hub client would retry for about 30 s before giving up."""
    if os.environ.get("HF_HUB_OFFLINE", "0") not in ("0", "", "false", "False"):
        return False
    endpoint = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co"))
    try:
        socket.create_connection((endpoint.hostname, endpoint.port or 443), timeout=timeout).close()
    except OSError:
        return False
    return True


class HFClip(ClipBackend):
    """A transformers CLIP model with its tokenizer and image processor."""

    backend = "hf"
    #: the PIL image processor of ``--image-resize pil``, made on first use
    _pil_processor = None

    def __init__(self, name: str = DEFAULT_HF_MODEL, device: str | torch.device = "cpu",
                 dtype: torch.dtype = torch.float32):
        self.name = str(name)
        looks_local = self.name.startswith((".", "/", "~")) or os.path.sep * 2 in self.name
        if looks_local and not os.path.isdir(os.path.expanduser(self.name)):
            raise LiteLVLMError(f"model directory {self.name!r} does not exist")
        self.name = self.source = os.path.expanduser(self.name)
        # The local folder or the Hugging Face cache first; the network only when allowed.
        kw = {"local_files_only": True}
        try:
            config = AutoConfig.from_pretrained(self.name, **kw)
        except OSError as e:
            if os.path.isdir(self.name):
                raise LiteLVLMError(f"model folder {self.name!r} could not be read: {e}") from None
            if not hub_reachable():
                raise LiteLVLMError(_offline_hint(self.name)) from None
            kw = {}
            try:
                config = AutoConfig.from_pretrained(self.name)
            except OSError as e:
                raise LiteLVLMError(_offline_hint(self.name, reachable=True)) from e
        if config.model_type != "clip":
            raise UnsupportedModelError(
                f"{self.name!r} is a {config.model_type!r} model; the hf backend needs a CLIP model with a "
                "CLS token and an [EOS]-pooled text tower (SigLIP-style models pool with an attention "
                "head or the last token and have no CLS: LiteLVLM's context score is undefined for them)")
        try:
            self.model = CLIPModel.from_pretrained(self.name, dtype=dtype, **kw).to(device).eval()
            self.model.requires_grad_(False)
            load = partial(AutoTokenizer.from_pretrained, self.name, **kw)
            # CLIP's tokenizer reads nothing of its folder once loaded: shared by the folders' contents
            self.tokenizer = shared_tokenizer(self.name, load, f"AutoTokenizer {sorted(kw)}", by_content=True)
            self.processor = AutoImageProcessor.from_pretrained(self.name, **kw)
        except OSError as e:
            raise LiteLVLMError(_offline_hint(self.name) + f" ({e})") from e
        self.image_mean = tuple(self.processor.image_mean)
        self.image_std = tuple(self.processor.image_std)
        vc, tc = self.model.config.vision_config, self.model.config.text_config
        self.vision_heads = vc.num_attention_heads
        self.text_heads = tc.num_attention_heads
        self.vision_layers, self.text_layers = vc.num_hidden_layers, tc.num_hidden_layers
        self.context_length = tc.max_position_embeddings
        self._grid = (vc.image_size // vc.patch_size,) * 2
        size = getattr(self.processor, "size", {}) or {}
        crop = getattr(self.processor, "crop_size", {}) or {}
        short = size.get("shortest_edge", vc.image_size) if isinstance(size, dict) else vc.image_size
        crop_hw = (crop.get("height", vc.image_size), crop.get("width", vc.image_size))
        mode = "shortest" if getattr(self.processor, "do_center_crop", True) else "squash"
        # transformers' processors (slow and torchvision-backed) centre-crop at floor offsets.
        self.geometry = Geometry(mode=mode, resize=int(short), crop=crop_hw, crop_rounding="floor")

    # -- properties ---------------------------------------------------------------------------
    @property
    def grid(self) -> tuple[int, int]:
        return self._grid

    @property
    def device(self) -> torch.device:
        return self.model.device

    @property
    def dtype(self) -> torch.dtype:
        return self.model.dtype

    def modules(self) -> torch.nn.Module:
        return self.model

    # -- vision -------------------------------------------------------------------------------
    def preprocess(self, images: list[Image.Image], pad_to_square: bool = False,
                   processor: str = "transformers", on_device: bool = True) -> torch.Tensor:
        """Pixel tensor (B, 3, H, W). ``processor="official"``: the PIL-backed ``CLIPImageProcessorPil``,
        bit-identical to the official transformers 4.28 ``CLIPImageProcessor``; ``"transformers"``: the
        loaded processor (torchvision-backed in transformers 5)."""
        check_one_of("CLIP preprocessing", processor, CLIP_PREPROCESSING)
        self.check_resize(images, pad_to_square)
        images = [im.convert("RGB") for im in images]
        if pad_to_square:
            mean = tuple(int(255 * m) for m in self.processor.image_mean)
            images = [expand2square(im, mean) for im in images]
        proc = self.pil_processor if processor == "official" else self.processor
        out = proc(images=images, return_tensors="pt")["pixel_values"]
        return out.to(self.device, self.dtype) if on_device else out

    @property
    def pil_processor(self):
        """The loaded processor's settings on transformers' PIL backend (made once, on first use)."""
        if self._pil_processor is None:
            settings = {k: v for k, v in self.processor.to_dict().items() if k != "image_processor_type"}
            self._pil_processor = CLIPImageProcessorPil(**settings)
        return self._pil_processor

    @torch.no_grad()
    def trace_image(self, pixel_values: torch.Tensor) -> VisionTrace:
        out = self.model.vision_model(pixel_values=pixel_values.to(self.device, self.dtype),
                                      output_hidden_states=True)
        return VisionTrace(hidden_states=tuple(out.hidden_states), grid=self.grid,
                           num_prefix_tokens=1, backend=self)

    def project_patches(self, patches: torch.Tensor) -> torch.Tensor:
        vm = self.model.vision_model
        return self.model.visual_projection(vm.post_layernorm(patches))

    def vision_qkv(self, block: int, hidden: torch.Tensor):
        layer = self.model.vision_model.encoder.layers[block]
        x = layer.layer_norm1(hidden)
        a = layer.self_attn
        return a.q_proj(x), a.k_proj(x), a.v_proj(x)

    # -- text ---------------------------------------------------------------------------------
    def tokenize(self, texts: list[str]):
        full = self.tokenizer(texts, add_special_tokens=True, verbose=False)["input_ids"]
        truncated = [len(ids) > self.context_length for ids in full]
        enc = self.tokenizer(texts, padding=True, truncation=True, max_length=self.context_length,
                             return_tensors="pt")
        ids = enc["input_ids"]
        eos_id = self.model.config.text_config.eos_token_id
        if eos_id == 2:  # legacy configs: the EOS is the highest id in the sequence
            eos = ids.argmax(-1)
        else:
            eos = (ids == eos_id).int().argmax(-1)
        return ids, eos, truncated

    def _text_forward(self, input_ids, eos_index, hidden_states):
        mask = (torch.arange(input_ids.shape[1], device=input_ids.device)[None] <= eos_index[:, None]).long()
        out = self.model.text_model(input_ids=input_ids, attention_mask=mask,
                                    output_hidden_states=hidden_states)
        pooled = out.last_hidden_state[torch.arange(input_ids.shape[0], device=input_ids.device), eos_index]
        embeds = self.model.text_projection(pooled)
        hs = tuple(out.hidden_states) if hidden_states else None
        return embeds, hs

    def text_attention_projections(self):
        return [(layer.self_attn.q_proj, layer.self_attn.k_proj)
                for layer in self.model.text_model.encoder.layers]

    def text_qkv(self, block: int, hidden: torch.Tensor):
        layer = self.model.text_model.encoder.layers[block]
        x = layer.layer_norm1(hidden)
        a = layer.self_attn
        return a.q_proj(x), a.k_proj(x), a.v_proj(x)
