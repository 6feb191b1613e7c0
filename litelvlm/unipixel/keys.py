"""The tensor names of a released UniPixel checkpoint, and their mapping onto the project's modules.

A ``PixelQwen2_5_VLForConditionalGeneration`` (PolyU-ChenLab/UniPixel @5c8e941, ``unipixel/model/
qwen2_5_vl.py`` L55-106) saved by transformers 4.53's ``save_pretrained`` holds, besides Qwen2.5-VL's
released names (``visual.*``, ``model.*``, ``lm_head.weight``; :mod:`litelvlm.qwen.checkpoint`):

* ``sam2.*``: its SAM 2.1 module (``SAM2Train`` when trained, ``SAM2VideoPredictor`` at inference: the
  same parameters) under SAM 2's own names, ``memory_encoder.fuser.layers.{i}.gamma`` renamed ``.weight``
  (``sam2/modeling/memory_encoder.py`` L94-98, and ``load_sam2_weights``, qwen2_5_vl.py L131-135). The
  image path reads the trunk, neck, prompt encoder, mask decoder and ``no_mem_embed``; they map onto
  transformers' ``Sam2Model`` (:mod:`litelvlm.sam2.keys`, :data:`SAM2_KEY_PAIRS`, after transformers' own
  ``convert_sam2_to_hf.py`` ``KEYS_TO_MODIFY_MAPPING``; ``sam_prompt_encoder.point_embeddings.{0..3}`` are
  stacked into ``prompt_encoder.point_embed.weight``, and the random-Fourier matrix is also
  ``shared_image_embedding.positional_embedding``). The memory attention, memory encoder, object-pointer
  and temporal-encoding tensors serve later frames of a video only (:func:`tracking_shapes`);
* ``seg_head.{0,1,3}.*``: the seg head (:mod:`litelvlm.unipixel.head`);
* ``ref_encoder.*``, ``ref_proj_single.*``, ``ref_proj_double.*``, ``ref_proj.1.*``, ``tem_pe.*``,
  ``tem_emb.*``, ``tem_proj.*``, ``msk_proj.{0,2}.*`` (L78-94): they encode point / region prompts
  (``<|ref|>``, ``<|mem|>``) into the LLM's input, which referring segmentation never has
  (:func:`extra_shapes`).

The loader keeps the first three groups' image-path tensors and checks every other name and shape against
these tables, so a checkpoint of another layout fails by name.
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
