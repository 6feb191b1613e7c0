"""The toy CLIP's training objective: image-text logits of a batch and its contrastive loss."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .model import pooled_features


def clip_logits(model, pixel_values: torch.Tensor, input_ids: torch.Tensor,
                attention_mask: torch.Tensor, buckets: int = 2) -> torch.Tensor:
    """``CLIPModel(...).logits_per_image`` (B, T), computed with less text work: each distinct
    caption is encoded once (a batch repeats the same hard negative for several images), and the
    distinct captions are encoded in ``buckets`` groups of similar length, each padded only to its
    own longest (the text tower is causal and pools at [EOS], so padding changes nothing)."""
    n = input_ids.shape[1]
    rows, inverse = torch.unique(torch.cat([input_ids, attention_mask], 1), dim=0, return_inverse=True)
    img = F.normalize(pooled_features(model.get_image_features(pixel_values=pixel_values)), dim=-1)
    lengths = rows[:, n:].sum(1)
    groups = [g for g in lengths.argsort(stable=True).tensor_split(max(1, buckets)) if len(g)]
    parts = []
    for g in groups:
        width = int(lengths[g].max())
        parts.append(pooled_features(model.get_text_features(input_ids=rows[g, :width],
                                                             attention_mask=rows[g, n:n + width])))
    txt = torch.cat(parts)[torch.cat(groups).argsort()]  # back to the order of ``rows``
    return model.logit_scale.exp() * img @ F.normalize(txt, dim=-1)[inverse].T


def contrastive_loss(logits: torch.Tensor, owner: torch.Tensor, truth: torch.Tensor) -> torch.Tensor:
    """Symmetric InfoNCE with several positives per image and false negatives masked.

    ``logits`` (B, T) scaled image-text similarities; texts ``0..P-1`` are positives of
    images ``owner``, the rest hard negatives; ``truth`` (B, T) marks texts true of an image.
    """
    P = owner.shape[0]
    cols = torch.arange(P)
    rows_i = logits[owner]  # (P, T): each positive's image row
    mask_i = truth[owner].clone()
    mask_i[cols, cols] = False  # keep the positive itself
    loss_i = F.cross_entropy(rows_i.masked_fill(mask_i, float("-inf")), cols)
    rows_t = logits[:, :P].T  # (P, B): each positive against every image
    mask_t = truth[:, :P].T.clone()
    mask_t[cols, owner] = False
    loss_t = F.cross_entropy(rows_t.masked_fill(mask_t, float("-inf")), owner)
    return 0.5 * (loss_i + loss_t)
