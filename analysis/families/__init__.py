"""The figure families, one module each (its smoke-results maker, loader and drawing, and its
:class:`~analysis.families.family.Family`), registered here once, in notebook order.

A new family: a module here defining ``FAMILY``, one line in :data:`FAMILIES`, then
``litelvlm figures --write-notebooks`` for its notebook.
"""

from __future__ import annotations

from analysis.families import efficiency, grounding, importance, quantization, retention, reversal, sink
from analysis.families.family import Family

#: every figure family by name, in notebook order (``notebooks/01_...`` first)
FAMILIES: dict[str, Family] = {fam.name: fam for fam in (
    reversal.FAMILY,  # 01_similarity_reversal
    sink.FAMILY,  # 02_text_attention_sink
    retention.FAMILY,  # 03_token_retention
    grounding.FAMILY,  # 04_grounding_vs_budget
    importance.FAMILY,  # 05_importance_correlation
    efficiency.FAMILY,  # 06_efficiency
    quantization.FAMILY,  # 07_quantization
)}
