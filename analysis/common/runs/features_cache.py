"""Per-image vision features on disk: a second run, or a run with other texts, skips the vision forward.

Entries hold, for one image, the patch tokens of each requested layer already projected
into the joint space (``visual_projection(post_layernorm(h))``, float32) and the image's
original size. The namespace (cache key) is the model name, backend, weights hash,
dtype, preprocessing geometry (including the pad option) and the layer set; writes go
through :class:`litelvlm.runs.cache.TensorCache` and are atomic, so an interrupted run keeps
every finished image and resumes from there.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from pathlib import Path

import torch

from litelvlm.data.refer import open_rgb
from litelvlm.errors import LiteLVLMError
from litelvlm.runs.cache import TensorCache, config_key
from litelvlm.runs.cache_dir import default_cache_dir

log = logging.getLogger(__name__)


def feature_namespace(clip, layers: list[int], pad_to_square: bool) -> dict:
    """The cache key dict: model, weights hash, preprocessing and layer set."""
    d = clip.describe()
    return {"kind": "vision-projected-patches/v1", "model": d["model"], "backend": d["backend"],
            "weights_hash": d["weights_hash"], "dtype": d["dtype"], "geometry": d["geometry"],
            "grid": d["grid"], "pad_to_square": bool(pad_to_square), "layers": sorted(int(x) for x in layers)}


class VisionFeatureCache:
    """Projected patch tokens per image and layer, computed once and kept on disk."""

    def __init__(self, clip, layers: list[int], pad_to_square: bool = False,
                 root: str | Path | None = None, enabled: bool = True):
        self.clip = clip
        self.layers = sorted(int(x) for x in layers)
        self.pad_to_square = pad_to_square
        self.namespace = feature_namespace(clip, self.layers, pad_to_square)
        self.enabled = enabled
        self.cache = TensorCache(Path(root or default_cache_dir()) / "vision-features", self.namespace) \
            if enabled else None
        self.hits = 0
        self.misses = 0

    @staticmethod
    def item_key(image_id: int, image_path: str | Path) -> str:
        """One entry per image file: its id, file name, size and modification time (a replaced or
        repaired file is a new entry; an unreadable one is never a hit)."""
        try:
            st = Path(image_path).stat()
        except OSError:
            return f"{image_id}-{Path(image_path).name}-missing"
        return f"{image_id}-{Path(image_path).name}-{st.st_size}-{st.st_mtime_ns}"

    def get(self, image_id: int, image_path: str | Path) -> dict[str, torch.Tensor] | None:
        """The cached entry (``layer_<l>`` tensors and ``size``) or None."""
        if self.cache is None:
            return None
        return self.cache.get(self.item_key(image_id, image_path))

    @torch.no_grad()
    def compute(self, paths: list[Path]) -> list[dict[str, torch.Tensor]]:
        """Run the vision tower on a batch of image files (raises LiteLVLMError for an unreadable one)."""
        images = [open_rgb(p) for p in paths]
        pixels = self.clip.preprocess(images, pad_to_square=self.pad_to_square)
        trace = self.clip.trace_image(pixels)
        per_layer = {f"layer_{layer}": trace.projected(layer).float().cpu() for layer in self.layers}
        return [{**{k: v[i].contiguous() for k, v in per_layer.items()},
                 "size": torch.tensor([im.height, im.width], dtype=torch.long)}
                for i, im in enumerate(images)]

    def iter_features(self, items: Iterable[tuple[int, Path]], batch_size: int = 8
                      ) -> Iterator[tuple[int, dict[str, torch.Tensor] | None, str | None]]:
        """Yield ``(image_id, entry or None, error or None)`` in the given order, batching cache misses.

        An unreadable image yields ``(image_id, None, message)`` and never stops the run.
        """
        pending: list[tuple[int, Path]] = []

        def flush():
            out = []
            try:
                entries = self.compute([p for _, p in pending])
                out = [(i, e, None) for (i, _), e in zip(pending, entries)]
            except LiteLVLMError:
                for i, p in pending:  # find the bad one(s): retry one by one
                    try:
                        out.append((i, self.compute([p])[0], None))
                    except LiteLVLMError as e:
                        out.append((i, None, str(e)))
            for (i, p), (_, e, _err) in zip(pending, out):
                if e is not None and self.cache is not None:
                    self.cache.put(self.item_key(i, p), e)
            pending.clear()
            return out

        for image_id, path in items:
            hit = self.get(image_id, path) if Path(path).is_file() else None
            if hit is not None:
                self.hits += 1
                # keep the original order: finish pending misses first
                if pending:
                    yield from flush()
                yield image_id, hit, None
                continue
            self.misses += 1
            pending.append((image_id, path))
            if len(pending) >= batch_size:
                yield from flush()
        if pending:
            yield from flush()


def cached_text_embeds(clip, texts: list[str], batch_size: int = 256, root: str | Path | None = None,
                       enabled: bool = True) -> tuple[torch.Tensor, bool]:
    """(T, D) float32 ``text_embeds`` of ``texts``, from the cache when this exact list was encoded before.

    Keyed by model, backend, weights hash and dtype (the namespace) and a hash of the texts
    (the item). Returns ``(embeddings, hit)``.
    """
    cache = None
    if enabled:
        d = clip.describe()
        ns = {"kind": "text-embeds/v1", "model": d["model"], "backend": d["backend"],
              "weights_hash": d["weights_hash"], "dtype": d["dtype"]}
        cache = TensorCache(Path(root or default_cache_dir()) / "text-embeds", ns)
        item = config_key({"texts": list(texts)})
        hit = cache.get(item)
        if hit is not None and hit["text_embeds"].shape[0] == len(texts):
            return hit["text_embeds"], True
    emb = clip.encode_text(texts, batch_size=batch_size, hidden_states=False).text_embeds.float().cpu()
    if cache is not None:
        cache.put(item, {"text_embeds": emb})
    return emb, False
