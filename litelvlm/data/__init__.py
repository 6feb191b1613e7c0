"""Referring-expression data: REFER/COCO loaders, mask geometry on the model's patch grid, prompt
templates."""

from .expressions import Expression, load_expressions
from .geometry import PatchCoverage, TransformParams, patch_coverage, transform_params
from .refer import ReferRecord, decode_segmentation, load_coco_instances, load_refer, open_rgb
from .templates import ANSWER_LIST, SEG_QUESTIONS, format_question, wrap_question

__all__ = ["ANSWER_LIST", "Expression", "PatchCoverage", "ReferRecord", "SEG_QUESTIONS", "TransformParams",
           "decode_segmentation", "load_coco_instances", "load_expressions", "load_refer", "open_rgb",
           "patch_coverage", "transform_params", "format_question", "wrap_question"]
