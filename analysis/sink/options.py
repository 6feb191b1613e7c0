"""``litelvlm sink``: its options (:class:`SinkArgs`) and their checks.

Light (no torch, no pandas): a bad option is refused at once; :func:`analysis.sink.command.run` imports the
study (:mod:`analysis.sink.compute`) after the checks.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass

from analysis.common.options.clip_args import ClipStudyArgs, check_clip_study
from litelvlm.cli_args import add_dataclass_arguments, arg
from litelvlm.errors import LiteLVLMError
from litelvlm.refer_layout import check_refer_folder
from litelvlm.shared_options import out_option


@dataclass
class SinkArgs(ClipStudyArgs):
    """The options of one ``sink`` run: the text-side ones here, the shared ones (the image options are
    those of the ablation) in :class:`~analysis.common.options.clip_args.ClipStudyArgs`."""

    out: str = out_option("output folder (sink.parquet, summary.csv, config.json)")
    expressions: str = arg(None, help="a text-only expressions JSON ({'items': [{'text': ...}]}), "
                                      "e.g. refcoco_unc_expressions/val.json")
    ablate_from: list[int] = arg([0], help="ablation: mask [SOS] for the [EOS] query in every text block "
                                           ">= this (one variant per value)", metavar="BLOCK")
    examples: int = arg(4, help="write OUT/eos_attention_examples.parquet: the head-averaged [EOS] attention "
                                "over the tokens, per layer, for the first N sentences", minimum=0)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``sink`` options (one per :class:`SinkArgs` field) to ``parser``."""
    add_dataclass_arguments(parser, SinkArgs)


def check_args(a: SinkArgs) -> None:
    """Raise a :class:`~litelvlm.errors.LiteLVLMError` naming the first invalid option (before any work)."""
    check_clip_study(a)
    if a.expressions and (a.refer_dir or a.coco_instances):
        raise LiteLVLMError("give either --expressions or --refer-dir/--coco-instances, not both")
    if not (a.expressions or a.refer_dir or a.coco_instances):
        raise LiteLVLMError("give --expressions FILE.json or --refer-dir D (or --coco-instances FILE)")
    if a.refer_dir:   # its layout, before anything loads (--coco-instances may give the instances)
        check_refer_folder(a.refer_dir, a.dataset, a.split_by, instances=not a.coco_instances)


#: this study's options (``analysis.common.runs.study.Study``)
ARGS = SinkArgs
