"""Token-importance signals inside the LVLM and their agreement with CLIP-side rankings.

``correlation`` (per-sentence rank statistics), ``attention_rows`` (hook-based capture of
the attention that chosen queries pay to the visual tokens), ``saliency`` (captum
gradient attributions w.r.t. the visual token embeddings), ``sensitivity`` (mask-IoU drop
when spatial token groups are removed) and ``aggregate`` (bootstrap summaries).
"""
