"""The tensor names of a released UniPixel checkpoint, and their mapping onto the project's modules.

Details: docs/unipixel.md (``litelvlm.unipixel.keys``).
"""

from __future__ import annotations

from ..sam2.keys import conv_shapes, linear_shapes, vector_shapes


def prompt_encoder_shapes(prefix: str, d: int) -> dict[str, tuple[int, ...]]:
    """A SAM ``PromptEncoder(embed_dim=d, mask_in_chans=16)``'s tensors (prompt_encoder.py L40-64)."""
    out = {f"{prefix}.pe_layer.positional_encoding_gaussian_matrix": (2, d // 2)}
    out.update({f"{prefix}.point_embeddings.{i}.weight": (1, d) for i in range(4)})
    out.update({f"{prefix}.not_a_point_embed.weight": (1, d), f"{prefix}.no_mask_embed.weight": (1, d)})
    out.update(conv_shapes(f"{prefix}.mask_downscaling.0", 1, 4, 2)
               | vector_shapes(f"{prefix}.mask_downscaling.1", 4)
               | conv_shapes(f"{prefix}.mask_downscaling.3", 4, 16, 2)
               | vector_shapes(f"{prefix}.mask_downscaling.4", 16)
               | conv_shapes(f"{prefix}.mask_downscaling.6", 16, d, 1))
    return out


def extra_shapes(sam_dim: int, llm_dim: int, merger_dim: int) -> dict[str, tuple[int, ...]]:
    """The prompt-encoding modules referring segmentation does not use (qwen2_5_vl.py L78-94); ``merger_dim``
    is the vision merger's input width (``visual.merger.hidden_size``: vision width x 4)."""
    out = prompt_encoder_shapes("ref_encoder", sam_dim)
    out.update(linear_shapes("ref_proj_single", 2 * sam_dim, 3 * sam_dim)
               | linear_shapes("ref_proj_double", 3 * sam_dim, 3 * sam_dim)
               | linear_shapes("ref_proj.1", 6 * sam_dim, llm_dim))
    out.update(
        {"tem_pe.positional_encoding_gaussian_matrix": (1, sam_dim // 2), "tem_emb.weight": (1, sam_dim)})
    out.update(linear_shapes("tem_proj", sam_dim, 3 * sam_dim))
    out.update(linear_shapes("msk_proj.0", merger_dim, merger_dim)
               | linear_shapes("msk_proj.2", merger_dim, llm_dim))
    return out
