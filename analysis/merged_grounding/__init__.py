"""Grounding on the merged-grid families (one expression per prompt on a merged Qwen2.5-VL grid, no official
multi-expression protocol): ``litelvlm eval-grounding --model <their model>`` and its figure set (the study
itself is ``analysis.grounding``'s)."""
