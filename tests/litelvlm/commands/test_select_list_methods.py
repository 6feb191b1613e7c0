"""``litelvlm select --list-methods --json``: every method with the LLM decoder layers whose attention weights
it reads on the default model's depth, whether it reads a vision tower's, and ``flash_compatible``."""

from __future__ import annotations

import json

from litelvlm.cli import main
from litelvlm.methods import get_method, method_names
from litelvlm.registry.families import DEFAULT_MODEL


def test_json_listing_declares_the_attention_each_method_reads(capsys):
    assert main(["select", "--list-methods", "--json"]) == 0
    listing = json.loads(capsys.readouterr().out)
    assert listing["model"] == DEFAULT_MODEL and listing["llm_layers"] == 4   # the tiny GLaMM's LLM
    rows = {r["name"]: r for r in listing["methods"]}
    assert list(rows) == method_names()
    for name, row in rows.items():
        spec = get_method(name)
        assert row["attention_weights"] == spec.attention_layers(4), name
        assert row["tower_attention_weights"] is spec.tower_attention_weights
        assert row["flash_compatible"] is True
    assert rows["fastv"]["attention_weights"] == [1] and rows["sparsevlm"]["attention_weights"] == [0, 1, 2]
    assert rows["dart"]["attention_weights"] == [] and rows["vispruner"]["tower_attention_weights"]
