"""Grounding on the second model family, UniPixel: ``litelvlm eval-grounding --model unipixel-...`` and its
figure family (the study itself is ``analysis.grounding``'s)."""
