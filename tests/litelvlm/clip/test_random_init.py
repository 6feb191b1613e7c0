"""The random CLIP's tokenizer files: OpenAI CLIP's BPE from open_clip's bundled vocabulary, read once per
process (building it was about 4 CPU-s of the suite), the same bytes in every folder."""

from __future__ import annotations

from pathlib import Path

from litelvlm.clip import random_init


def _files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def test_the_bundled_bpe_is_read_once_and_every_folder_gets_the_same_files(tmp_path, monkeypatch):
    built = []

    class Counting(random_init.SimpleTokenizer):
        def __init__(self, *args, **kwargs):
            built.append(1)
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(random_init, "SimpleTokenizer", Counting)
    random_init.openai_bpe.cache_clear()
    try:
        first = random_init.write_clip_tokenizer(tmp_path / "a")
        second = random_init.write_clip_tokenizer(tmp_path / "b")
    finally:
        random_init.openai_bpe.cache_clear()
    assert len(built) == 1
    assert _files(tmp_path / "a") == _files(tmp_path / "b")
    assert first.get_vocab() == second.get_vocab()
    st = random_init.SimpleTokenizer()
    assert len(first.get_vocab()) == len(st.encoder)
    assert first("a photo of a cat").input_ids[1:-1] == st.encode("a photo of a cat")
