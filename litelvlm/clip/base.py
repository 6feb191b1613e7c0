"""The CLIP backend interface (:class:`ClipBackend`).

A backend runs ONE vision forward pass and keeps every layer's hidden states; everything
else LiteLVLM needs (patch tokens in the joint space, a layer's q/k/v, the CLS->patch
attention row of any layer) is computed from those hidden states with the model's own
modules, so no second forward pass and no full attention matrix is ever stored. The traces it
returns, and the layer conventions, are in :mod:`litelvlm.clip.traces`.
"""

from __future__ import annotations

import abc
import contextlib
import hashlib
import logging
import re
import warnings
from pathlib import Path

import torch
import torch.nn.functional as F
from PIL import Image

from ..data.geometry import transform_params
from ..data.resize_cap import check_resize
from ..runs.cache import config_key
from ..runs.cache_dir import default_cache_dir
from ..runs.io import atomic_path
from .files import model_files
from .traces import Geometry, TextTrace, VisionTrace, attention_rows


@contextlib.contextmanager
def _eos_row_capture(backend, eos: torch.Tensor, wanted: bool):
    """Yields a list that fills, during one text forward, with each block's [EOS] rows (B, H, S):
    forward hooks on the q/k projections; the row is computed as soon as the keys exist."""
    mods = backend.text_attention_projections() if wanted else None
    if mods is None:  # not wanted, or no separate projections (open_clip): eos_attention recomputes
        yield None
        return
    rows: list[torch.Tensor] = []
    state: dict = {}
    handles = []

    def on_q(_m, _i, out):
        state["q"] = out

    def on_k(_m, _i, out):
        b = torch.arange(out.shape[0], device=out.device)
        q_eos = state.pop("q")[b, eos][:, None]
        rows.append(attention_rows(q_eos, out, backend.text_heads, query_positions=eos[:, None])[:, :, 0])

    try:
        for q_proj, k_proj in mods:
            handles += [q_proj.register_forward_hook(on_q), k_proj.register_forward_hook(on_k)]
        yield rows
    finally:
        for h in handles:
            h.remove()


class ClipBackend(abc.ABC):
    """One small interface over transformers' ``CLIPModel`` and open_clip's ``CLIP``."""

    name: str
    source: str                 # the resolved model string the files come from (``name`` may be an alias)
    backend: str
    model: torch.nn.Module      # the loaded model: transformers' ``CLIPModel`` or open_clip's ``CLIP``
    vision_heads: int
    text_heads: int
    vision_layers: int          # encoder blocks (hidden_states has one more entry)
    text_layers: int
    geometry: Geometry
    context_length: int
    image_mean: tuple[float, float, float]
    image_std: tuple[float, float, float]
    #: :meth:`weights_hash` once computed (None: not yet, or the weights changed)
    _weights_hash: str | None = None

    @property
    @abc.abstractmethod
    def grid(self) -> tuple[int, int]:
        """Patch grid (rows, cols)."""

    @property
    def num_patches(self) -> int:
        return self.grid[0] * self.grid[1]

    @property
    @abc.abstractmethod
    def device(self) -> torch.device: ...

    @property
    @abc.abstractmethod
    def dtype(self) -> torch.dtype: ...

    @abc.abstractmethod
    def modules(self) -> torch.nn.Module:
        """The underlying model (for hashing, device moves and hooks)."""

    @abc.abstractmethod
    def preprocess(self, images: list[Image.Image], pad_to_square: bool = False,
                   on_device: bool = True) -> torch.Tensor:
        """Pixel tensor (B, 3, H, W) through the model's own image transform, on the model's device and in its
        dtype; ``on_device=False``: the transform's CPU float32 tensor, before that move (a loader thread's
        part, moved later by ``.to(device, dtype)``, the same operation)."""

    def check_resize(self, images: list[Image.Image], pad_to_square: bool = False) -> None:
        """Refuse, before any resizing, an image that the pad or resize of :attr:`geometry` would make larger
        than :data:`~litelvlm.data.resize_cap.MAX_RESIZED_SIDE` a side (a LiteLVLMError naming the file)."""
        for im in images:
            t = transform_params(self.geometry, im.height, im.width, pad_to_square)
            if t.frame != (im.height, im.width):
                check_resize(im, im.size, t.frame[::-1], "LLaVA's pad to a square")
            check_resize(im, im.size, t.resized[::-1], f"CLIP's {self.geometry.mode}-side resize")

    @abc.abstractmethod
    def trace_image(self, pixel_values: torch.Tensor) -> VisionTrace:
        """One vision forward pass, keeping every layer's hidden states."""

    @abc.abstractmethod
    def tokenize(self, texts: list[str]) -> tuple[torch.Tensor, torch.Tensor, list[bool]]:
        """(input_ids, eos_index, truncated) for a batch of texts."""

    @abc.abstractmethod
    def _text_forward(self, input_ids: torch.Tensor, eos_index: torch.Tensor,
                      hidden_states: bool) -> tuple[torch.Tensor, tuple[torch.Tensor, ...] | None]:
        """(text_embeds, hidden_states) for one tokenised batch."""

    @abc.abstractmethod
    def project_patches(self, patches: torch.Tensor) -> torch.Tensor:
        """``visual_projection(post_layernorm(patches))``."""

    @abc.abstractmethod
    def vision_qkv(self, block: int, hidden: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """q, k, v of vision block ``block`` given its input ``hidden``."""

    @abc.abstractmethod
    def text_qkv(self, block: int, hidden: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """q, k, v of text block ``block`` given its input ``hidden``."""

    def text_attention_projections(self) -> list[tuple[torch.nn.Module, torch.nn.Module]] | None:
        """(q_proj, k_proj) modules of every text block, in order, for capturing [EOS] rows during the
        forward pass; None when the tower has no separate projection modules (then they are recomputed)."""
        return None

    @torch.no_grad()
    def encode_text(self, texts: list[str], batch_size: int = 256, hidden_states: bool = True,
                    warn_truncation: bool = True, eos_rows: bool = False) -> TextTrace:
        """Tokenise and encode texts in batches; texts over the context are truncated with a warning.

        Batches are formed from the texts sorted by length (less padding, so faster); the
        returned trace is in the input order. ``eos_rows`` also keeps every block's [EOS]
        attention row, computed from the q/k projections of the forward pass itself.
        """
        texts = list(texts)
        order = sorted(range(len(texts)), key=lambda i: (len(texts[i]), i)) if len(texts) > batch_size \
            else list(range(len(texts)))
        ids_all, eos_all, emb_all, trunc_all = [], [], [], []
        hs_all: list[list[torch.Tensor]] = []
        rows_all: list[list[torch.Tensor]] = []
        for start in range(0, len(texts), batch_size):
            chunk = [texts[i] for i in order[start:start + batch_size]]
            ids, eos, trunc = self.tokenize(chunk)
            with _eos_row_capture(self, eos.to(self.device), eos_rows) as rows:
                emb, hs = self._text_forward(ids.to(self.device), eos.to(self.device), hidden_states)
            if rows is not None:
                rows_all.append(rows)
            ids_all.append(ids)
            eos_all.append(eos)
            emb_all.append(emb)
            trunc_all.extend(trunc)
            if hs is not None:
                hs_all.append(list(hs))
        inverse = torch.empty(len(texts), dtype=torch.long)
        inverse[torch.tensor(order, dtype=torch.long)] = torch.arange(len(texts))
        truncated = [trunc_all[int(j)] for j in inverse]
        if warn_truncation and any(truncated):
            n = sum(truncated)
            first = texts[truncated.index(True)]
            warnings.warn(f"{n} text(s) exceed the text encoder's context of {self.context_length} tokens "
                          f"and were truncated (first: {first[:60]!r}...)", stacklevel=2)
        width = max(i.shape[1] for i in ids_all)
        ids = torch.cat([F.pad(i, (0, width - i.shape[1]), value=0) for i in ids_all])[inverse]
        hs = None
        if hs_all:
            hs = tuple(torch.cat([F.pad(b[layer], (0, 0, 0, width - b[layer].shape[1])) for b in hs_all])[
                inverse.to(hs_all[0][layer].device)] for layer in range(len(hs_all[0])))
        emb = torch.cat(emb_all)
        rows = None
        if rows_all:
            rows = tuple(torch.cat([F.pad(b[layer], (0, width - b[layer].shape[-1])) for b in rows_all])[
                inverse.to(rows_all[0][layer].device)] for layer in range(len(rows_all[0])))
        return TextTrace(texts=texts, input_ids=ids, eos_index=torch.cat(eos_all)[inverse],
                         text_embeds=emb[inverse.to(emb.device)], hidden_states=hs, truncated=truncated,
                         backend=self, eos_rows=rows)

    def weight_files(self) -> list[Path]:
        """The local files the weights were loaded from ([] when unknown, e.g. a hub id not in the cache)."""
        return [p for p in model_files(self.source, self.backend)
                if p.suffix in (".safetensors", ".bin", ".pt", ".json")]

    def weights_hash(self) -> str:
        """SHA-256 (16 hex digits) over every parameter and buffer: keys caches to the exact weights.

        Hashing a full-size model takes seconds, so the value is cached under the litelvlm cache
        folder, keyed by the weight files' paths, sizes and modification times (and the dtype and
        backend): a changed file is hashed afresh, and so is a memo that is not 16 hex digits (damaged).
        """
        if self._weights_hash is None:
            memo = self._weights_hash_memo()
            saved = ""
            with contextlib.suppress(OSError):
                saved = memo.read_bytes().decode("ascii", "replace").strip() if memo is not None else ""
            if re.fullmatch("[0-9a-f]{16}", saved):
                self._weights_hash = saved
                return saved
            if saved:
                logging.getLogger(__name__).warning("the weights-hash memo %s is damaged: hashing the "
                                                    "weights again", memo)
            h = hashlib.sha256()
            for name, t in sorted(self.modules().state_dict().items()):
                h.update(name.encode())
                h.update(str(tuple(t.shape)).encode())
                h.update(t.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy().tobytes())
            self._weights_hash = h.hexdigest()[:16]
            if memo is not None:
                with contextlib.suppress(OSError):  # a read-only cache only costs the next run the hash

                    memo.parent.mkdir(parents=True, exist_ok=True)
                    with atomic_path(memo) as tmp:
                        tmp.write_text(self._weights_hash + "\n")
        return self._weights_hash

    def _weights_hash_memo(self) -> Path | None:
        files = self.weight_files()
        if not files:
            return None

        stats = [(str(p.resolve()), p.stat().st_size, p.stat().st_mtime_ns) for p in files]
        key = config_key({"files": stats, "dtype": str(self.dtype), "backend": self.backend})
        return default_cache_dir() / "weights-hash" / f"{key}.txt"

    def to_display(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """Undo the normalisation: (B, H, W, 3) floats in [0, 1] of what the model sees."""
        mean = torch.tensor(self.image_mean, dtype=torch.float32).view(1, 3, 1, 1)
        std = torch.tensor(self.image_std, dtype=torch.float32).view(1, 3, 1, 1)
        x = pixel_values.detach().float().cpu() * std + mean
        return x.clamp(0, 1).permute(0, 2, 3, 1)

    def describe(self) -> dict:
        """A JSON-able description for result ``config.json`` files and cache keys."""
        return {"model": self.name, "backend": self.backend, "weights_hash": self.weights_hash(),
                "grid": list(self.grid), "geometry": self.geometry.__dict__,
                "dtype": str(self.dtype).replace("torch.", "")}
