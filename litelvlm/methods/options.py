"""The methods' command-line options, declared typed: each tuple is one method's ``options``.

A method's registry entry (:data:`litelvlm.methods.TABLE`) names its tuple, and
:func:`litelvlm.methods.get_method` gives the method those options. This module imports nothing but
:class:`~litelvlm.method.Option`, so the command line builds every method's flags before torch loads
(:func:`litelvlm.cli_args.method_flags`). An option's ``default`` is its ``select`` keyword's own default;
``tests/litelvlm/test_methods_package.py`` checks that every option names a keyword of its method's
``select`` with that default. A method without options names none.
"""

from __future__ import annotations

from ..method import Option

#: random-deep's pruning layer (also divprune+random-deep's): ``random_deep.py``
RANDOM_DEEP_LAYER = Option(
    "layer", "random_deep_layer", "1..L",
    help="random-deep, divprune+random-deep (this project's reading of the information-horizon paper): the "
         "LLM layer L from which K random visual tokens remain (default: 20 of 32 layers, the same relative "
         "depth on other LLMs)")

#: ``random_deep.py``
RANDOM_DEEP_OPTIONS = (RANDOM_DEEP_LAYER,)

#: ``divprune_random_deep.py`` (the ratio's default: its ``DEFAULT_RATIO``)
DIVPRUNE_RANDOM_DEEP_OPTIONS = (
    RANDOM_DEEP_LAYER,
    Option("ratio", "random_deep_ratio", value_type=float, default=0.5,
           help="divprune+random-deep (this project's reading): the share of the N visual tokens DivPrune "
                "keeps at the LLM input before the random deep pruning to K (at least K)"),
)

#: ``fastv.py`` (the default: its ``DEFAULT_LAYER``, K=2 in the paper)
FASTV_OPTIONS = (
    Option("layer", "fastv_layer", "1..L", default=2, help="FastV's K: prune after LLM layer K-1"),
)

#: ``v2drop.py`` (and its Qwen2.5-VL variant, ``v2drop_qwen.py``)
V2DROP_OPTIONS = (
    Option("layers", "v2drop_layers", value_type=str,
           help="V2Drop: the LLM layers before which it drops visual tokens, comma-separated (default: the "
                "official 3,17,22 of 32 layers on a LLaMA LLM, 3,16,22 of 28 on Qwen2.5-VL; other depths: "
                "the same relative depth, this project's adaptation)"),
    Option("ratios", "v2drop_ratios", value_type=str,
           help="V2Drop: the keep ratio of each drop, of the visual tokens present, comma-separated "
                "(default: the official 0.5,0.5,0 on a LLaMA LLM, 0.25,0.05,0 on Qwen2.5-VL); each drop "
                "keeps at least K, the last one K (this project's mapping of the budget)"),
)

#: ``llm_attention.py``
LLM_ATTENTION_OPTIONS = (
    Option("layer", "attention_layer", "0..L-1",
           help="llm-attention: decoder layer (default: the middle one)"),
    Option("queries", "attention_queries", value_type=str, default="seg", choices=("last", "text", "seg"),
           help="llm-attention: query rows"),
)
