"""The paired external CLIP's scores mapped onto UniPixel's merged tokens (this project's adaptation; see
:mod:`litelvlm.unipixel.pipeline`), with the options of where LiteLVLM's two parts come from.

* ``context`` (:data:`CONTEXTS`): the paired CLIP's [CLS] context score mapped onto the merged grid (``clip``, the
  default), or the attention each merged token receives in the last block of Qwen2.5-VL's own vision tower (``vit``,
  VScan's Qwen score, :mod:`litelvlm.qwen.vit_attention`);
* ``similarity`` (:data:`SIMILARITIES`): the paired CLIP's patch-text similarity mapped onto the merged grid (``clip``,
  the default), or the relevance of each merged token to the prompt's instruction in the LLM's input space (``llm``,
  :func:`litelvlm.lvlm.relevance.prompt_relevance`: the score OpenVINO's CDPruner port gives Qwen tokens). LiteLVLM's
  rule is unchanged: its lowest similarity is kept first (the reversal).
"""

from __future__ import annotations

import torch

from ..pruning import MappedInputs, SelectorInputs

#: where LiteLVLM's context part comes from (see the module docstring)
CONTEXTS = ("clip", "vit")
#: where LiteLVLM's similarity part comes from (see the module docstring)
SIMILARITIES = ("clip", "llm")
#: CLIP's layer whose patch tokens the similarity part reads (LLaVA's feature layer, which LiteLVLM's code uses)
CLIP_FEATURE_LAYER = -2


@torch.no_grad()
def mapped_inputs(pipe, prepared, clip_text: str) -> MappedInputs:
    """The paired CLIP's traces of the image (padded to a square) and of the sentence's text, with the map of CLIP's
    patches onto the merged grid, and the pipeline's context and similarity sources."""
    from ..data.geometry import transform_params
    from ..qwen.grid import TokenGrid, resample_matrix, source_edges
    from .protocol import question

    clip, cache = pipe.clip, prepared.clip_cache
    if "vision" not in cache:
        cache["vision"] = clip.trace_image(clip.preprocess([prepared.image.convert("RGB")], pad_to_square=True))
        params = transform_params(clip.geometry, *prepared.image_size, pad_to_square=True)
        rows, cols = clip.grid
        cache["weights"] = resample_matrix(source_edges(params, rows, cols), TokenGrid.from_thw(prepared.grid_thw[0]),
                                           prepared.image_size)
    if pipe.context_source == "vit" and "vit_context" not in cache:
        from ..qwen.vit_attention import received_attention

        v = pipe.vision(prepared)
        cache["vit_context"] = received_attention(v.visual, v.pixel_values, v.grid_thw)
    sentence = prepared.sentences[0]
    text = clip.encode_text([question(sentence) if clip_text == "question" else sentence], warn_truncation=False)
    inputs = SelectorInputs(vision=cache["vision"], text=text, feature_layer=CLIP_FEATURE_LAYER, seed=prepared.seed)
    similarity = None
    if pipe.similarity_source == "llm":
        from ..lvlm.relevance import prompt_relevance

        similarity = prompt_relevance(pipe, prepared)[None]
    return MappedInputs(inputs, cache["weights"], context_override=cache.get("vit_context"),
                        similarity_override=similarity)


__all__ = ["CLIP_FEATURE_LAYER", "CONTEXTS", "SIMILARITIES", "mapped_inputs"]
