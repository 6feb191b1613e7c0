"""The studies' subcommands of ``litelvlm``: name -> :class:`~litelvlm.commands.Command` (module, help).

The library's ``litelvlm/cli.py`` never imports this package: it finds this table through the
``litelvlm.commands`` entry-point group declared in ``pyproject.toml``. Each module defines
``add_arguments(parser)`` and ``run(args) -> int`` and is imported only when its subcommand runs;
``tests/project/test_typed_wiring.py`` loads every one.
"""

from __future__ import annotations

from litelvlm.commands import Command

COMMANDS: dict[str, Command] = {
    "demo": Command("analysis.demo.command", "run the main job on the bundled toy CLIP and synthetic scenes"),
    "reversal": Command("analysis.reversal.command", "study 1: CLIP similarity reversal over referent masks"),
    "sink": Command("analysis.sink.command", "study 2: the [EOS]->[SOS] attention sink of the text encoder"),
    "retention": Command("analysis.retention.command", "which tokens each method keeps, stage by stage (the "
                         "retention figures)"),
    "eval-grounding": Command("analysis.grounding.command", "RefCOCO referring segmentation (cIoU/gIoU) per "
                              "method and budget"),
    "importance": Command("analysis.importance.command", "correlate CLIP token ranks with the LLM's own "
                          "token importance"),
    "efficiency": Command("analysis.efficiency.command", "FLOPs, prefill time, CUDA time and activation "
                          "memory"),
    "validate": Command("analysis.validate.command", "one real image (a video for a video family) through "
                        "the full pruned model: every method and budget, tokens, [SEG] positions, masks, "
                        "time and memory, with checks"),
    "positions": Command("analysis.positions.command", "the position switch on the sample image: kept tokens "
                         "at their original RoPE positions, renumbered, or with PosPad's markers, per method "
                         "and budget"),
    "eval-video": Command("analysis.video.command", "referring video segmentation (J&F) per method and "
                          "per-frame budget, with each family's video path"),
    "plan": Command("analysis.plan.command", "the paper's tables as runs on the data at hand, their time "
                    "estimated here, and the torch.distributed.run commands that fill one results tree"),
    "figures": Command("analysis.figures.command", "regenerate every figure from result tables"),
    "tables": Command("analysis.tables.command", "the paper's tables (grounding, efficiency, video) from a "
                      "results tree, as Markdown, LaTeX and CSV"),
}
