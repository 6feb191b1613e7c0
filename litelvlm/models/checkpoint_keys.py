"""Renaming checkpoint keys by templates (``"blocks.{a}.norm{b}."`` -> ``"layers.{a}.layer_norm{b}."``),
shared by the families' checkpoint loaders (GLaMM's SAM, UniPixel's SAM 2)."""

from __future__ import annotations

import re


def template_regex(template: str) -> re.Pattern:
    """A key template's regex: ``{a}`` and ``{b}`` match layer numbers; a template ending in ``.`` is a
    prefix."""
    rx = re.escape(template).replace(r"\{a\}", r"(?P<a>\d+)").replace(r"\{b\}", r"(?P<b>\d+)")
    return re.compile("^" + rx + ("" if template.endswith(".") else "$"))


def convert_key(key: str, rules) -> str | None:
    """``key`` renamed by the first matching ``(regex, target template)`` rule; None when none matches."""
    for rx, target in rules:
        m = rx.match(key)
        if m:
            return target.format(**m.groupdict()) + key[m.end():]
    return None
