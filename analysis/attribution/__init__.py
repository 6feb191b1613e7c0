"""Token-importance signals inside the LVLM and their agreement with CLIP-side rankings.

``correlation`` (per-sentence rank statistics), ``glamm_signals`` (every signal on a
``GlammPipeline``: attention rows captured with ``litelvlm.lvlm.attention_rows``, captum
attributions from ``litelvlm.lvlm.attribution``), ``sensitivity`` (mask-IoU drop when spatial
token groups are removed), ``aggregate`` (bootstrap summaries) and ``memory`` (peak memory).
"""
