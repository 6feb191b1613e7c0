"""litelvlm.runs.resume: a folder written before an option or a numerics field was added resumes under the
value its results were computed with (``ADDED_OPTIONS``, ``ADDED_NUMERICS``)."""

from __future__ import annotations

import json

import pytest

from litelvlm.errors import LiteLVLMError
from litelvlm.lvlm.numerics import Numerics
from litelvlm.methods import method_option_list
from litelvlm.runs.resume import ADDED_OPTIONS, check_config

OLDER_NUMERICS = {"attn": "eager", "clip_preprocess": "official", "score_dtype": "model"}


def _config(numerics: Numerics, dtype: str, **options) -> dict:
    return {"model": "tiny-random:0", "model_dtype": dtype, "numerics": numerics.to_dict(), **options}


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_a_folder_from_before_clip_softmax_resumes_under_what_it_computed(tmp_path, dtype):
    """Before ``clip_softmax``, CLIP's eager kernel was transformers 5's (``float32``): a bfloat16 folder
    resumes under ``--clip-softmax float32`` and is refused under the official default; a float32 one (the
    same bits at CLIP's head sizes) and one under SDPA (the field chooses an eager kernel) under either."""
    older = {"model": "tiny-random:0", "model_dtype": dtype, "numerics": OLDER_NUMERICS}
    (tmp_path / "config.json").write_text(json.dumps(older))
    check_config(tmp_path, _config(Numerics(clip_softmax="float32"), dtype, clip_softmax="float32"))
    if dtype == "float32":
        check_config(tmp_path, _config(Numerics.official(), dtype, clip_softmax=None))
    else:
        with pytest.raises(LiteLVLMError, match="the recorded numerics"):
            check_config(tmp_path, _config(Numerics.official(), dtype, clip_softmax=None))
    sdpa = {**older, "numerics": {**OLDER_NUMERICS, "attn": "sdpa"}}
    (tmp_path / "config.json").write_text(json.dumps(sdpa))
    for numerics in (Numerics(attn="sdpa"), Numerics(attn="sdpa", clip_softmax="float32")):
        check_config(tmp_path, _config(numerics, dtype, clip_softmax=None))


def test_a_folder_from_before_a_methods_options_resumes(tmp_path):
    """A folder written before a method with options of its own was added (IPCV) holds none of its results:
    it resumes whatever those options are, and a method option with a default is listed in ``ADDED_OPTIONS``
    (a run at 6a893aa0 was refused, naming ``--ipcv-llm-layer`` and ``--ipcv-top-k``)."""
    defaults = {o.dest: o.default for o in method_option_list()}
    new = _config(Numerics.official(), "float32", **defaults)
    older = {k: v for k, v in new.items() if not k.startswith(("ipcv_", "vitcop_"))}
    (tmp_path / "config.json").write_text(json.dumps(older))
    check_config(tmp_path, new)
    added = {dest for dest, default in defaults.items() if dest.startswith("ipcv_") and default is not None}
    assert added and added <= set(ADDED_OPTIONS)
