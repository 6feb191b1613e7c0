"""litelvlm.runs.resume.check_config: a folder of a different configuration of the same command is
refused naming the two or three options that differ most (the model, then what changes the numbers, then the
selection, then bookkeeping), then how many more, and the way out."""

from __future__ import annotations

import json

import pytest

from litelvlm.errors import LiteLVLMError
from litelvlm.runs.resume import check_config, name_options, option_rank


@pytest.mark.odd_case("a run owns its --out", "an --out holding a different configuration of the same "
                      "command (20 options differ)", "eval-grounding, importance, positions, validate, "
                      "eval-video",
                      "exit 2 naming the 3 options that differ most (model, then numbers, then selection, "
                      "then bookkeeping) and how many more, another --out and --overwrite")
def test_the_options_that_differ_most_are_named_first_and_at_most_three(tmp_path):
    old = {"model": "glamm-tiny-random", "seed": 0, "protocol": "official", "limit_images": 2,
           "cache_dir": "a", **{f"option_{i:02d}": i for i in range(16)}}
    new = {"model": "glamm-tiny-random:1", "seed": 1, "protocol": "per-expression", "limit_images": 4,
           "cache_dir": "b", **{f"option_{i:02d}": -i - 1 for i in range(16)}}
    (tmp_path / "config.json").write_text(json.dumps(old))
    with pytest.raises(LiteLVLMError) as e:
        check_config(tmp_path, new)
    message = str(e.value)
    assert "(differs in: --model, --option-00, --option-01 and 18 more)" in message, message
    assert "another --out" in message and "--overwrite" in message
    assert name_options(["out", "seed", "limit_images",
                         "dtype"]) == "--dtype, --seed, --limit-images and 1 more"
    assert name_options(["seed", "cache_dir"]) == "--seed, --cache-dir"
    assert [k for k in sorted(["device", "methods", "seed", "backend"], key=option_rank)] == \
        ["backend", "seed", "methods", "device"]
