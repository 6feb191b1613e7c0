"""An LLM decoder stack run layer by layer, whatever the family: what the methods acting with the LLM read
(:class:`~litelvlm.llm.context.LLMContext`), the attention rows computed from a layer's own modules
(:mod:`~litelvlm.llm.attention_rows`), the checks every sequence passes first (:mod:`~litelvlm.llm.limits`),
the captured prefill (:mod:`~litelvlm.llm.captured`, :mod:`~litelvlm.llm.compiled`), and the relevance and
attribution reads some methods make (:mod:`~litelvlm.llm.relevance`, :mod:`~litelvlm.llm.attribution`). It
knows no family and no method: the family contract (:mod:`litelvlm.lvlm`) and the methods
(:mod:`litelvlm.methods`) both build on it.
"""
