"""The weights hash is computed once per set of weight files and read back afterwards."""

from __future__ import annotations

import os

import pytest


def test_hash_is_memoised_by_file_stats(tiny_hf_clip_dir, tmp_path, monkeypatch):
    from litelvlm.clip import load_clip

    monkeypatch.setenv("LITELVLM_CACHE", str(tmp_path / "cache"))
    first = load_clip(str(tiny_hf_clip_dir), "hf")
    h = first.weights_hash()
    memo = list((tmp_path / "cache" / "weights-hash").glob("*.txt"))
    assert len(memo) == 1 and memo[0].read_text().strip() == h
    second = load_clip(str(tiny_hf_clip_dir), "hf")
    monkeypatch.setattr(second, "modules", lambda: pytest.fail("the hash was recomputed"))
    assert second.weights_hash() == h
    weights = next(tiny_hf_clip_dir.glob("*.safetensors"))
    st = weights.stat()
    try:  # a touched file is hashed afresh (same bytes: same hash, a second memo)
        os.utime(weights, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
        assert load_clip(str(tiny_hf_clip_dir), "hf").weights_hash() == h
        assert len(list((tmp_path / "cache" / "weights-hash").glob("*.txt"))) == 2
    finally:
        os.utime(weights, ns=(st.st_atime_ns, st.st_mtime_ns))


@pytest.mark.parametrize("backend", ["hf", "open_clip"])
def test_a_random_model_string_is_memoised_too(backend, tmp_path, monkeypatch):
    """``tiny336-random`` is the model's name; its files are those of the folder it resolves to."""
    from litelvlm.clip import load_clip

    monkeypatch.setenv("LITELVLM_CACHE", str(tmp_path / "cache"))
    first = load_clip("tiny-random", backend)
    assert first.name == "tiny-random" and first.weight_files()
    h = first.weights_hash()
    second = load_clip("tiny-random", backend)
    monkeypatch.setattr(second, "modules", lambda: pytest.fail("the hash was recomputed"))
    assert second.weights_hash() == h
