"""What a UniPixel model folder must hold before its loader reads it
(:func:`litelvlm.models.model_folder.check_model_folder`)."""

from __future__ import annotations

from ..models.model_folder import QWEN_FILES, QWEN_SCHEMA, FolderSchema

#: Qwen2.5-VL's config keys with UniPixel's, and Qwen's tokenizer and image-processor files
FOLDER = FolderSchema("config.json", {**QWEN_SCHEMA, "sam2_config": "str", "sam2_image_size": "int",
                                      "sam2_hidden_tokens": "int", "sam2_batch_mode": "bool",
                                      "ref_token_id": "int",
                                      "seg_token_id": "int", "mem_token_id": "int"}, QWEN_FILES)
