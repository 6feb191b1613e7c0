"""open_clip backend: any architecture with a pretrained tag, a local checkpoint or a ``local-dir:``.

Model strings: ``ARCH`` (random init), ``ARCH:TAG`` (e.g. ``ViT-L-14-336:openai``),
``ARCH:/path/to/checkpoint.pt``, ``local-dir:/path`` (``open_clip_config.json`` plus weights)
and ``hf-hub:org/name``.
"""

from __future__ import annotations

import contextlib
import logging
import os

import open_clip
import torch
import torch.nn.functional as F
from PIL import Image

from ..errors import LiteLVLMError, UnsupportedModelError
from ..models.channel_stats import OPENAI_CLIP_MEAN, OPENAI_CLIP_STD
from ..models.model_spec import OPEN_CLIP_PREFIXES, ModelSpec
from .base import ClipBackend
from .hf import expand2square
from .traces import Geometry, VisionTrace


@contextlib.contextmanager
def _quiet_root_logger():
    """Within the block, ERROR records that open_clip logs through the root logger are dropped (it
    logs the error it then raises; the raised one is reported). Its warnings still show."""
    def keep(record: logging.LogRecord) -> bool:
        return not (record.levelno >= logging.ERROR and "open_clip" in record.pathname)

    root = logging.getLogger()
    root.addFilter(keep)
    try:
        yield
    finally:
        root.removeFilter(keep)


@contextlib.contextmanager
def _capture(modules_in: list[tuple[torch.nn.Module, bool]], batch_first: bool):
    """Record the input (pre-hook) or output of each module, in NLD layout; hooks always removed."""
    store: list[torch.Tensor | None] = [None] * len(modules_in)
    handles = []

    def make(i: int, pre: bool):
        def fix(x: torch.Tensor) -> torch.Tensor:
            return x if (batch_first or pre) else x.transpose(0, 1)

        if pre:
            return lambda m, args, kwargs: store.__setitem__(i, fix(args[0]))
        return lambda m, args, out: store.__setitem__(i, fix(out))

    try:
        for i, (m, pre) in enumerate(modules_in):
            if pre:
                handles.append(m.register_forward_pre_hook(make(i, True), with_kwargs=True))
            else:
                handles.append(m.register_forward_hook(make(i, False)))
        yield store
    finally:
        for h in handles:
            h.remove()


def _mha_qkv(block: torch.nn.Module, hidden: torch.Tensor, where: str):
    attn = block.attn
    if not isinstance(attn, torch.nn.MultiheadAttention):
        raise UnsupportedModelError(
            f"{where}: attention module {type(attn).__name__} is not nn.MultiheadAttention; "
            "q/k/v extraction supports the standard open_clip ViT blocks only")
    x = block.ln_1(hidden)
    return F.linear(x, attn.in_proj_weight, attn.in_proj_bias).chunk(3, dim=-1)


class OpenClip(ClipBackend):
    """An open_clip ``CLIP`` / ``CustomTextCLIP`` with its transform and tokenizer."""

    backend = "open_clip"

    def __init__(self, name: str, device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32):
        self.name = self.source = str(name)
        spec = ModelSpec.of(self.name)
        arch, pretrained = spec.open_clip_name
        if pretrained and os.path.sep in pretrained and not os.path.exists(pretrained):
            raise LiteLVLMError(f"open_clip checkpoint {pretrained!r} does not exist")
        if spec.local_dir is not None and not os.path.isdir(spec.local_dir):
            raise LiteLVLMError(f"open_clip model directory {spec.local_dir!r} does not exist")
        if not arch.startswith(OPEN_CLIP_PREFIXES) and arch not in open_clip.list_models():
            near = [m for m in open_clip.list_models() if arch.lower()[:5] in m.lower()][:8]
            raise LiteLVLMError(f"open_clip has no architecture {arch!r}"
                                + (f"; similar: {', '.join(near)}" if near else "")
                                + " (all: open_clip.list_models())")
        try:
            with _quiet_root_logger():  # open_clip logs the error it then raises: one message is enough
                model, _, preprocess = open_clip.create_model_and_transforms(arch, pretrained=pretrained)
            self.tokenizer = open_clip.get_tokenizer(arch)
        except (RuntimeError, OSError, ValueError) as e:
            raise LiteLVLMError(
                f"open_clip model {self.name!r} could not be loaded offline ({e}). Point --model at "
                "'ARCH:/path/to/checkpoint.pt' or 'local-dir:/path' (open_clip_config.json + weights), "
                "or fetch the weights on a machine with network access first") from e
        self.model = model.to(device=device, dtype=dtype).eval().requires_grad_(False)
        self.transform = preprocess
        visual = self.model.visual
        if not hasattr(visual, "transformer") or not hasattr(visual, "conv1"):
            raise UnsupportedModelError(f"{self.name!r}: only open_clip ViT towers are supported "
                                        f"(got {type(visual).__name__})")
        if getattr(visual, "attn_pool", None) is not None:
            raise UnsupportedModelError(f"{self.name!r} pools with an attention head; its patch tokens "
                                        "have no projection into the joint space")
        self._text = self.model.text if hasattr(self.model, "text") else self.model
        self.pool_type = getattr(self._text, "text_pool_type", getattr(self._text, "pool_type", "argmax"))
        if self.pool_type not in ("argmax", "eos", "last"):
            raise UnsupportedModelError(f"{self.name!r} pools text with {self.pool_type!r}; there is no "
                                        "[EOS] (or last-token substitute) embedding")
        self.vision_heads = visual.transformer.resblocks[0].attn.num_heads
        self.text_heads = self._text.transformer.resblocks[0].attn.num_heads
        self.vision_layers = len(visual.transformer.resblocks)
        self.text_layers = len(self._text.transformer.resblocks)
        self.context_length = int(getattr(self.model, "context_length", 77))
        self.num_prefix = 0 if getattr(visual, "class_embedding", None) is None else 1
        gs = visual.grid_size
        self._grid = (int(gs[0]), int(gs[1]))
        cfg = getattr(visual, "preprocess_cfg", {}) or {}
        self.image_mean = tuple(cfg.get("mean", None) or visual.image_mean or OPENAI_CLIP_MEAN)
        self.image_std = tuple(cfg.get("std", None) or visual.image_std or OPENAI_CLIP_STD)
        size = cfg.get("size", visual.image_size)
        size = (size, size) if isinstance(size, int) else tuple(size)
        mode = cfg.get("resize_mode", "shortest")
        # torchvision's CenterCrop rounds the offset; transformers floors it.
        self.geometry = Geometry(mode=mode, resize=int(min(size)), crop=(int(size[0]), int(size[1])),
                                 crop_rounding="round")

    @property
    def grid(self) -> tuple[int, int]:
        return self._grid

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        return next(self.model.parameters()).dtype

    def modules(self) -> torch.nn.Module:
        return self.model

    def preprocess(self, images: list[Image.Image], pad_to_square: bool = False,
                   on_device: bool = True) -> torch.Tensor:
        self.check_resize(images, pad_to_square)
        ims = [im.convert("RGB") for im in images]
        if pad_to_square:
            mean = tuple(int(255 * m) for m in self.image_mean)
            ims = [expand2square(im, mean) for im in ims]
        out = torch.stack([self.transform(im) for im in ims])
        return out.to(self.device, self.dtype) if on_device else out

    @torch.no_grad()
    def trace_image(self, pixel_values: torch.Tensor) -> VisionTrace:
        visual = self.model.visual
        tr = visual.transformer
        hooks = [(tr, True)] + [(b, False) for b in tr.resblocks]
        with _capture(hooks, getattr(tr, "batch_first", True)) as store:
            visual(pixel_values.to(self.device, self.dtype))
        return VisionTrace(hidden_states=tuple(store), grid=self.grid,
                           num_prefix_tokens=self.num_prefix, backend=self)

    def project_patches(self, patches: torch.Tensor) -> torch.Tensor:
        visual = self.model.visual
        x = visual.ln_post(patches)
        return x @ visual.proj if visual.proj is not None else x

    def vision_qkv(self, block: int, hidden: torch.Tensor):
        return _mha_qkv(self.model.visual.transformer.resblocks[block], hidden, self.name)

    def tokenize(self, texts: list[str]):
        ids = self.tokenizer(list(texts))
        if hasattr(self.tokenizer, "encode"):
            truncated = [len(self.tokenizer.encode(t)) + 2 > self.context_length for t in texts]
        else:
            truncated = [False] * len(texts)
        if self.pool_type == "argmax":
            eos = ids.argmax(-1)
        elif self.pool_type == "eos":
            eos = (ids == self._text.text_eos_id if hasattr(self._text, "text_eos_id") else
                   ids == self.model.text_eos_id).int().argmax(-1)
        else:  # "last": the last position is the documented [EOS] substitute
            eos = torch.full((ids.shape[0],), ids.shape[1] - 1, dtype=torch.long)
        return ids, eos, truncated

    def _text_forward(self, input_ids, eos_index, hidden_states):
        tr = self._text.transformer
        hooks = [(tr, True)] + [(b, False) for b in tr.resblocks] if hidden_states else []
        with _capture(hooks, getattr(tr, "batch_first", True)) as store:
            emb = self.model.encode_text(input_ids)
        return emb, (tuple(store) if hidden_states else None)

    def text_qkv(self, block: int, hidden: torch.Tensor):
        return _mha_qkv(self._text.transformer.resblocks[block], hidden, self.name)
