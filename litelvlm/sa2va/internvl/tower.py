"""InternViT as a vision-tower stage (:class:`~litelvlm.pruning.tower.TowerContext`): the tiles of one
image through transformers' ``InternVLVisionLayer`` blocks run as their two residual branches, for a rule that
prunes inside the tower and gives every token back (IPCV).

Each tile is one sequence (B tiles, the [CLS] token first, 1024 patches); a block's attention branch is
``lambda_1 * attention(layernorm_before(x))`` and its MLP branch ``lambda_2 * mlp(layernorm_after(x))`` (the
released ``ls1`` / ``ls2``; InternViT's attention reads no position, so a subset of the tokens needs nothing
more); the output goes through the tower's final norm (the identity, ``use_mean_pooling``), loses its [CLS]
row, and is pixel-shuffled and projected as ``InternVLModel.get_image_features`` does: unpruned, the image's
visual tokens as ``prepare_image`` computes them (tested).
"""

from __future__ import annotations

import torch

from ...pruning.tower import TowerContext


class InternViTTower(TowerContext):
    """The stage on ``model`` (transformers' ``InternVLModel``) and an image's tile pixels (B, 3, 448, 448);
    ``dtype``: the LLM inputs' dtype."""

    def __init__(self, model: torch.nn.Module, tiles: torch.Tensor, dtype: torch.dtype):
        self.model, self.tiles, self.dtype = model, tiles, dtype
        self.layers = list(model.vision_tower.encoder.layer)
        self.prefix = 1
        self.total_blocks = self.num_blocks = len(self.layers)
        self._embedded: torch.Tensor | None = None
        x = self.embed()
        self.num_visual = int(x.shape[0] * (x.shape[1] - 1))
        self.num_tokens = int(self.num_visual * model.config.downsample_ratio ** 2)

    def embed(self) -> torch.Tensor:
        if self._embedded is None:
            out = self.model.vision_tower.embeddings(self.tiles)
            self._embedded = out[0] if isinstance(out, tuple) else out
        return self._embedded

    def attend(self, index: int, x: torch.Tensor, rows: torch.Tensor | None) -> torch.Tensor:
        layer = self.layers[index]
        return layer.lambda_1 * layer.attention(layer.layernorm_before(x))[0] + x

    def feed(self, index: int, x: torch.Tensor) -> torch.Tensor:
        layer = self.layers[index]
        return layer.lambda_2 * layer.dropout(layer.mlp(layer.layernorm_after(x))) + x

    def finish(self, x: torch.Tensor) -> torch.Tensor:
        m = self.model
        feats = m.vision_tower.layernorm(x)[:, 1:, :]
        b, t = feats.shape[:2]
        side = int(t ** 0.5)
        feats = m.pixel_shuffle(feats.reshape(b, side, side, -1), scale_factor=m.config.downsample_ratio)
        out = m.multi_modal_projector(feats.reshape(b, -1, feats.shape[-1]))
        return out.reshape(-1, out.shape[-1]).to(self.dtype)


__all__ = ["InternViTTower"]
