"""What a VideoGLaMM model folder must hold before its loader reads it
(:func:`litelvlm.models.model_folder.check_model_folder`)."""

from __future__ import annotations

from ..models.model_folder import LLM_SCHEMA, TOKENIZER_FILES, FolderSchema

#: Phi-3's config keys with VideoGLaMM's, and the tokenizer
FOLDER = FolderSchema("config.json", {**LLM_SCHEMA, "sliding_window": "int", "seg_token_idx": "int",
                                      "litelvlm_random": "dict", "litelvlm_random.preset": "str"},
                      TOKENIZER_FILES)
