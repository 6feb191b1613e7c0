"""The pipeline settings a study derives from its :class:`~analysis.common.options.model_args.ModelDataArgs`:
the numerics and the quantization arguments (the heavy half of :mod:`analysis.common.options.model_args`: it
imports torch)."""

from __future__ import annotations

from analysis.common.options.model_args import ModelDataArgs
from litelvlm.lvlm.numerics import Numerics
from litelvlm.models.quantize import check_quantize
from litelvlm.registry.families import resolve


def study_numerics(args: ModelDataArgs, protocol: str):
    """The pipeline's ``Numerics``: the official stack under ``protocol="official"``, the project's earlier
    numerics otherwise, with ``--attn`` / ``--clip-preprocess`` / ``--score-dtype`` / ``--clip-softmax``
    overriding; the official attention kernel is the family's (its card's ``official_attn``)."""
    # the model as its options resolved it (resolve: the value itself)
    official = resolve(args.model).card.official_attn if protocol == "official" else None
    return Numerics.for_protocol(protocol, attn=args.attn or official, clip_preprocess=args.clip_preprocess,
                                 score_dtype=args.score_dtype, clip_softmax=args.clip_softmax)


def quantize_kwargs(args: ModelDataArgs) -> dict[str, str]:
    """``GlammPipeline.from_model_string``'s quantization and layer-arithmetic arguments from the options."""
    check_quantize(args.quantize, args.quantize_backend)
    return {"quantize": args.quantize, "quantize_backend": args.quantize_backend,
            "layer_dtype": args.layer_dtype}


__all__ = ["quantize_kwargs", "study_numerics"]
