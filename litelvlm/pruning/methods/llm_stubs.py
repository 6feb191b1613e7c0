"""Registration points for methods that run inside the LLM; ``litelvlm.lvlm`` implements them."""

from ..registry import register_llm_method

register_llm_method("none", "no pruning: all N visual tokens (the unpruned baseline)")
register_llm_method("fastv", "FastV: drop tokens by the last token's attention at LLM layer K-1")
register_llm_method("llm-attention", "oracle: rank visual tokens by the attention they receive in the LLM")
register_llm_method("saliency", "oracle: rank visual tokens by gradient saliency of the mask (captum; litelvlm.lvlm)")
