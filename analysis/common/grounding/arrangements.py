"""How a video prompt's frames meet their family's square-only pooling (light: imports nothing): the names the
studies offer (``validate --arrangement``; ``eval-video --arrangement`` and ``efficiency --arrangements``
spell the same three), each described in docs/video.md, "Which arrangement, and why"."""

from __future__ import annotations

#: ``pool``: the official pooling (every frame to 12 x 12 whatever it kept); ``pool-min``: to min(sqrt K, 12)
#: squared; ``direct``: no pooling (the last two this project's readings)
VIDEO_ARRANGEMENTS: tuple[str, ...] = ("pool", "pool-min", "direct")

__all__ = ["VIDEO_ARRANGEMENTS"]
