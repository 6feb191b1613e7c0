"""The CLIP backend interface and the traces it returns.

A backend runs ONE vision forward pass and keeps every layer's hidden states; everything
else LiteLVLM needs (patch tokens in the joint space, a layer's q/k/v, the CLS->patch
attention row of any layer) is computed from those hidden states with the model's own
modules, so no second forward pass and no full attention matrix is ever stored.

Layer conventions (stable names, used everywhere in the project):

* ``hidden_states[i]`` for ``i in 0..L``: 0 is the embedding output (after the pre-norm
  where the model has one), ``i`` is the output of encoder block ``i-1``, ``L`` the last.
* ``block`` ``b in 0..L-1`` is an encoder layer; its attention reads ``hidden_states[b]``.
  Negative block and layer indices count from the end, as in Python.
"""

from __future__ import annotations

import abc
import contextlib
import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from PIL import Image

from ..errors import UnsupportedModelError

#: Hook-point names of the quantities a trace exposes, and the trace method each one reads:
#: ``hook_point(name, vision=..., text=...)`` resolves them (``{layer}``/``{block}`` are integers,
#: negative ones counting from the end).
HOOK_POINTS: dict[str, tuple[str, str]] = {
    "vision.hidden_states.{layer}": ("vision", "hidden_state"),
    "vision.blocks.{block}.attn.qkv": ("vision", "qkv"),
    "vision.blocks.{block}.attn.cls_row": ("vision", "cls_attention"),
    "vision.projected.{layer}": ("vision", "projected"),
    "text.hidden_states.{layer}": ("text", "hidden_state"),
    "text.blocks.{block}.attn.qkv": ("text", "qkv"),
    "text.blocks.{block}.attn.pattern": ("text", "attention"),
    "text.blocks.{block}.attn.eos_row": ("text", "eos_attention"),
    "text.text_embeds": ("text", "text_embeds"),
}


def hook_point(name: str, vision: VisionTrace | None = None, text: TextTrace | None = None):
    """The tensor (or q/k/v tuple) a :data:`HOOK_POINTS` name stands for, read from the given traces."""
    import re

    for template, (side, method) in HOOK_POINTS.items():
        rx = "^" + re.escape(template).replace(r"\{layer\}", r"(-?\d+)").replace(r"\{block\}", r"(-?\d+)") + "$"
        m = re.match(rx, name)
        if m is None:
            continue
        trace = vision if side == "vision" else text
        if trace is None:
            raise ValueError(f"hook point {name!r} needs a {side} trace")
        attr = getattr(trace, method)
        return attr(*(int(g) for g in m.groups())) if callable(attr) else attr
    raise KeyError(f"unknown hook point {name!r}; known: {', '.join(HOOK_POINTS)}")


@dataclass(frozen=True)
class Geometry:
    """The geometric part of a backend's image transform (what the mask must undergo too).

    ``mode`` is ``"shortest"`` (resize the shortest side to ``resize``, then centre-crop
    ``crop``), ``"squash"`` (resize both sides to ``crop``) or ``"longest"`` (resize the
    longest side, then pad). ``pad_to_square`` is LLaVA's "pad" preprocessing, applied first.
    ``crop_rounding`` names how the centre-crop offset is rounded: ``"floor"`` as in
    transformers' image processors, ``"round"`` as in torchvision's ``CenterCrop``.
    """

    mode: str
    resize: int
    crop: tuple[int, int]
    crop_rounding: str = "floor"
    pad_to_square: bool = False


@dataclass
class VisionTrace:
    """Everything one vision forward pass yields, for a batch of images."""

    hidden_states: tuple[torch.Tensor, ...]
    grid: tuple[int, int]
    num_prefix_tokens: int
    backend: ClipBackend = field(repr=False)

    @property
    def num_layers(self) -> int:
        """L, the number of encoder blocks."""
        return len(self.hidden_states) - 1

    @property
    def num_patches(self) -> int:
        return self.grid[0] * self.grid[1]

    def layer_index(self, layer: int) -> int:
        """Normalise a (possibly negative) index into ``hidden_states``."""
        n = len(self.hidden_states)
        if not -n <= layer < n:
            raise IndexError(f"layer {layer} out of range for {n} hidden states (0..{n - 1})")
        return layer % n

    def hidden_state(self, layer: int) -> torch.Tensor:
        """``hidden_states[layer]`` (B, S, W), prefix tokens included (0: embeddings)."""
        return self.hidden_states[self.layer_index(layer)]

    def patches(self, layer: int = -2) -> torch.Tensor:
        """Patch tokens (B, N, W) of ``hidden_states[layer]``, CLS excluded."""
        return self.hidden_states[layer][:, self.num_prefix_tokens:]

    def cls(self, layer: int = -2) -> torch.Tensor:
        """The CLS token (B, W) of ``hidden_states[layer]``."""
        self._need_cls()
        return self.hidden_states[layer][:, 0]

    def projected(self, layer: int = -2) -> torch.Tensor:
        """Patch tokens of a layer mapped into the joint space: ``visual_projection(post_layernorm(h))``."""
        return self.backend.project_patches(self.patches(layer))

    def qkv(self, block: int = -1) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """q, k, v (B, S, W) of an encoder block, all heads concatenated, before scaling."""
        b = block % self.num_layers
        return self.backend.vision_qkv(b, self.hidden_states[b])

    def cls_attention(self, block: int = -1) -> torch.Tensor:
        """The CLS query's attention over the patches (B, H, N) in an encoder block."""
        self._need_cls()
        q, k, _ = self.qkv(block)
        row = attention_rows(q[:, :1], k, self.backend.vision_heads)[:, :, 0]
        return row[..., self.num_prefix_tokens:]

    def _need_cls(self) -> None:
        if self.num_prefix_tokens < 1:
            raise UnsupportedModelError(
                f"{self.backend.name} has no CLS token; CLS attention and the context score are "
                "undefined for it (the similarity-based quantities still work)")


@dataclass
class TextTrace:
    """Everything one batched text forward pass yields, for T texts."""

    texts: list[str]
    input_ids: torch.Tensor
    eos_index: torch.Tensor
    text_embeds: torch.Tensor
    hidden_states: tuple[torch.Tensor, ...] | None
    truncated: list[bool]
    backend: ClipBackend = field(repr=False)
    #: per block, the [EOS] rows (T, H, S) captured during the forward pass (``encode_text(eos_rows=True)``)
    eos_rows: tuple[torch.Tensor, ...] | None = field(default=None, repr=False)

    @property
    def num_layers(self) -> int:
        return 0 if self.hidden_states is None else len(self.hidden_states) - 1

    def _hs(self) -> tuple[torch.Tensor, ...]:
        if self.hidden_states is None:
            raise ValueError("this TextTrace was made with hidden_states=False")
        return self.hidden_states

    def hidden_state(self, layer: int) -> torch.Tensor:
        """``hidden_states[layer]`` (T, S, W) of the text encoder (traces made with hidden states)."""
        return self._hs()[layer]

    def qkv(self, block: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """q, k, v (T, S, W) of a text encoder block."""
        hs = self._hs()
        b = block % (len(hs) - 1)
        return self.backend.text_qkv(b, hs[b])

    def attention(self, block: int) -> torch.Tensor:
        """The full causal attention pattern (T, H, S, S) of a text block (texts are short)."""
        q, k, _ = self.qkv(block)
        return attention_rows(q, k, self.backend.text_heads, causal_offset=0)

    def eos_attention(self, block: int) -> torch.Tensor:
        """The [EOS] query's attention row (T, H, S) in a text block; keys after [EOS] get 0."""
        if self.eos_rows is not None:
            return self.eos_rows[block]
        q, k, _ = self.qkv(block)
        idx = self.eos_index.to(q.device)
        q_eos = q[torch.arange(q.shape[0], device=q.device), idx][:, None]
        return attention_rows(q_eos, k, self.backend.text_heads, query_positions=idx[:, None])[:, :, 0]


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


def attention_rows(q: torch.Tensor, k: torch.Tensor, num_heads: int, *,
                   query_positions: torch.Tensor | None = None,
                   causal_offset: int | None = None) -> torch.Tensor:
    """Softmax attention (B, H, Q, S) of query rows ``q`` (B, Q, W) over keys ``k`` (B, S, W).

    Causal masking: ``query_positions`` (B, Q) gives each query's position, or
    ``causal_offset=0`` means query j sits at position j. Without either, no mask.
    """
    B, Q, W = q.shape
    S = k.shape[1]
    d = W // num_heads
    qh = q.reshape(B, Q, num_heads, d).transpose(1, 2).float()
    kh = k.reshape(B, S, num_heads, d).transpose(1, 2).float()
    logits = qh @ kh.transpose(-1, -2) * d ** -0.5
    if causal_offset is not None:
        query_positions = (torch.arange(Q, device=q.device) + causal_offset)[None].expand(B, Q)
    if query_positions is not None:
        keys = torch.arange(S, device=q.device)
        allowed = keys[None, None, :] <= query_positions[:, :, None]
        logits = logits.masked_fill(~allowed[:, None], float("-inf"))
    return logits.softmax(-1).to(q.dtype)


class ClipBackend(abc.ABC):
    """One small interface over transformers' ``CLIPModel`` and open_clip's ``CLIP``."""

    name: str
    source: str                 # the resolved model string the files come from (``name`` may be an alias)
    backend: str
    vision_heads: int
    text_heads: int
    vision_layers: int          # encoder blocks (hidden_states has one more entry)
    text_layers: int
    geometry: Geometry
    context_length: int
    image_mean: tuple[float, float, float]
    image_std: tuple[float, float, float]

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
    def preprocess(self, images: list[Image.Image], pad_to_square: bool = False) -> torch.Tensor:
        """Pixel tensor (B, 3, H, W) through the model's own image transform."""

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
        import warnings

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
        from .files import model_files

        return [p for p in model_files(self.source, self.backend) if p.suffix in (".safetensors", ".bin", ".pt", ".json")]

    def weights_hash(self) -> str:
        """SHA-256 (16 hex digits) over every parameter and buffer: keys caches to the exact weights.

        Hashing a full-size model takes seconds, so the value is cached under the litelvlm cache
        folder, keyed by the weight files' paths, sizes and modification times (and the dtype and
        backend): a changed file is hashed afresh.
        """
        if getattr(self, "_weights_hash", None) is None:
            memo = self._weights_hash_memo()
            if memo is not None and memo.exists():
                self._weights_hash = memo.read_text().strip()
                return self._weights_hash
            h = hashlib.sha256()
            for name, t in sorted(self.modules().state_dict().items()):
                h.update(name.encode())
                h.update(str(tuple(t.shape)).encode())
                h.update(t.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy().tobytes())
            self._weights_hash = h.hexdigest()[:16]
            if memo is not None:
                with contextlib.suppress(OSError):  # a read-only cache only costs the next run the hash
                    from ..io import atomic_path

                    memo.parent.mkdir(parents=True, exist_ok=True)
                    with atomic_path(memo) as tmp:
                        tmp.write_text(self._weights_hash + "\n")
        return self._weights_hash

    def _weights_hash_memo(self) -> Path | None:
        files = self.weight_files()
        if not files:
            return None
        from ..cache import config_key, default_cache_dir

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
