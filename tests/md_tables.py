"""Reading markdown tables back in tests: the header and body rows of every table in a text."""

from __future__ import annotations


def markdown_tables(text: str) -> list[tuple[list[str], list[list[str]]]]:
    """(header cells, body rows' cells) of every GitHub-flavoured markdown table in ``text``."""
    tables, block = [], []
    for line in [*text.splitlines(), ""]:
        if line.startswith("|"):
            block.append([c.strip() for c in line.strip().strip("|").split("|")])
        elif block:
            if len(block) >= 2 and set("".join(block[1])) <= set("-: "):
                tables.append((block[0], block[2:]))
            block = []
    return tables
