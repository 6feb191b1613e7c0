"""What a GLaMM model folder must hold before its loader reads it
(:func:`litelvlm.models.model_folder.check_model_folder`)."""

from __future__ import annotations

from ..models.model_folder import LLM_SCHEMA, TOKENIZER_FILES, FolderSchema, prefixed

#: ``litelvlm_arch`` of a GLaMM written by this project (:class:`litelvlm.glamm.config.GlammArch`)
_ARCH = {"name": "str", "clip": "str|dict", "vocab_size": "int|null", "sam_global_attn": "int list",
         "rms_norm_eps": "float", "rope_theta": "float",
         **{k: "int" for k in ("llm_hidden", "llm_layers", "llm_intermediate", "llm_heads", "llm_kv_heads",
                               "sam_hidden", "sam_layers", "sam_heads", "sam_window", "sam_patch",
                               "sam_decoder_mlp", "sam_decoder_heads", "prompt_dim", "sam_image_size",
                               "sam_mask_input_channels", "max_positions", "feature_layer")}}

#: a GLaMM-RefSeg folder (or one written by this project): LLaVA's config keys and the LLaMA tokenizer
FOLDER = FolderSchema("config.json", {**LLM_SCHEMA, "mm_vision_select_layer": "int", "out_dim": "int",
                                      "litelvlm_arch": "dict", **prefixed("litelvlm_arch.", _ARCH)},
                      TOKENIZER_FILES)
