"""What a run leaves out (an unreadable image, a sentence whose referent cannot be scored, a ref naming a
missing annotation), said on screen: one WARNING line per cause with its count and first examples, e.g.
``8 of 10 sentences left out: image size mismatch (8): image 42: file is 48x64 but the annotation says 64x48;
...``. The results folders record the same counts (``config.json``, ``skipped.csv``); this makes them visible
as the run ends, not only there."""

from __future__ import annotations

import logging
from collections import Counter

#: examples shown per cause
EXAMPLES = 3


class Exclusions:
    """Counts and first examples of what a run leaves out, by cause; :meth:`announce` says them on screen."""

    def __init__(self, what: str):
        self.what = what
        self.counts: Counter = Counter()
        self.examples: dict[str, list[str]] = {}

    def add(self, cause: str, example: str, n: int = 1) -> None:
        """Count ``n`` items left out for ``cause``; ``example`` (naming the image or entry) is kept among the
        first."""
        self.counts[cause] += n
        shown = self.examples.setdefault(cause, [])
        if len(shown) < EXAMPLES and example not in shown:
            shown.append(example)

    def lines(self, total: int) -> list[str]:
        """One line per cause, most frequent first: ``N of TOTAL <what> left out: <cause> (<n>):
        <examples>``."""
        left_out = sum(self.counts.values())
        out = []
        for cause, n in sorted(self.counts.items(), key=lambda kv: (-kv[1], kv[0])):
            shown = self.examples[cause]
            more = f"; and {n - len(shown)} more" if n > len(shown) and len(shown) == EXAMPLES else ""
            out.append(f"{left_out} of {total} {self.what} left out: {cause} ({n}): {'; '.join(shown)}{more}")
        return out

    def announce(self, total: int, log: logging.Logger) -> list[str]:
        """Log :meth:`lines` as warnings on ``log`` (nothing when nothing was left out); returns them."""
        lines = self.lines(total)
        for line in lines:
            log.warning(line)
        return lines


def one_line(text: object, limit: int = 160) -> str:
    """``text`` on one line, cut to ``limit`` characters (an example in a warning)."""
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


def skip_cause(reason: str) -> str:
    """The cause of a skipped image, from the error that skipped it."""
    if "annotations are for" in reason:
        return "image size mismatch"
    if "MAX_RESIZED_SIDE" in reason or "below 1 pixel" in reason or "aspect ratio above" in reason:
        return "image too thin to resize"
    return "image unreadable"


def announce_skipped_images(skipped: list[dict], sentences: dict, total: int, log: logging.Logger,
                            what: str = "sentences") -> list[str]:
    """Say on screen the ``what`` (sentences) that the skipped images (``{"image_id", "reason"}`` dicts) take
    out of ``total``, one line per cause; ``sentences`` maps an image id to its number of ``what``."""
    left_out = Exclusions(what)
    for s in skipped:
        image_id = s["image_id"]
        n = sentences.get(image_id, sentences.get(str(image_id), 1))
        left_out.add(skip_cause(str(s["reason"])), f"image {image_id}: {one_line(s['reason'])}", int(n))
    return left_out.announce(total, log)
