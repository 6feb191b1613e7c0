"""Text-only expression files (``{"items": [{"image", "mask", "text"}, ...]}``), as in
refcoco_unc_expressions."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..errors import LiteLVLMError
from ..runs.io import read_json_file


@dataclass(frozen=True)
class Expression:
    """One referring expression with the image and mask file names it refers to (may not exist)."""

    index: int
    text: str
    image: str
    mask: str


def load_expressions(path: str | Path) -> list[Expression]:
    """Read an expressions JSON file, in file order; raises :class:`LiteLVLMError` naming the file."""
    path = Path(path)
    if not path.is_file():
        raise LiteLVLMError(f"expressions file {str(path)!r} does not exist")
    data = read_json_file(path, "expressions file")
    items = data.get("items") if isinstance(data, dict) else data
    if not isinstance(items, list) or any(not isinstance(i, dict) or "text" not in i for i in items):
        raise LiteLVLMError(f"expressions file {str(path)!r} must hold {{'items': [{{'text': ...}}, ...]}}")
    return [
        Expression(index=i, text=str(it["text"]), image=str(it.get("image", "")),
                   mask=str(it.get("mask", "")))
            for i, it in enumerate(items)]
