"""UniPixel (Qwen2.5-VL + SAM 2.1) pixel grounding: the RefCOCO protocol, the mask head and its checkpoints."""
