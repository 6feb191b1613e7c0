"""A folder's tokenizer loads once per process: the same files give the same tokenizer, a rewritten folder a
new one, and a name that is no local folder loads each time."""

from __future__ import annotations

import os

from litelvlm.models import shared_tokenizer as st


def test_the_same_files_load_once_and_a_rewritten_file_loads_again(tmp_path):
    (tmp_path / "tokenizer.json").write_text("{}")
    loads = []

    def load():
        loads.append(1)
        return object()

    st.forget_tokenizers()
    first = st.shared_tokenizer(tmp_path, load, "test")
    assert st.shared_tokenizer(str(tmp_path), load, "test") is first and len(loads) == 1
    assert st.shared_tokenizer(tmp_path, load, "another loader") is not first and len(loads) == 2
    (tmp_path / "tokenizer.json").write_text('{"changed": 1}')
    os.utime(tmp_path / "tokenizer.json", ns=(1, 1))
    assert st.shared_tokenizer(tmp_path, load, "test") is not first and len(loads) == 3
    st.forget_tokenizers()


def test_a_hub_name_is_loaded_each_time(tmp_path):
    loads = []
    for _ in range(2):
        st.shared_tokenizer(tmp_path / "no-such-folder", lambda: loads.append(1), "test")
    assert len(loads) == 2


def test_a_process_keeps_a_few(tmp_path):
    st.forget_tokenizers()
    for i in range(st.KEEP + 3):
        (tmp_path / str(i)).mkdir()
        st.shared_tokenizer(tmp_path / str(i), object, "test")
    assert len(st._LOADED) == st.KEEP
    st.forget_tokenizers()


def test_two_clips_from_one_folder_share_their_tokenizer(tiny_hf_clip_dir):
    from litelvlm.clip import load_clip

    a, b = load_clip(str(tiny_hf_clip_dir), "hf"), load_clip(str(tiny_hf_clip_dir), "hf")
    assert a.tokenizer is b.tokenizer and a.model is not b.model


def test_by_content_two_folders_with_the_same_files_share_and_other_files_do_not(tmp_path):
    loads = []

    def load():
        loads.append(1)
        return object()

    st.forget_tokenizers()
    for name, text in (("a", "{}"), ("b", "{}"), ("c", '{"other": 1}')):
        (tmp_path / name).mkdir()
        (tmp_path / name / "tokenizer.json").write_text(text)
        (tmp_path / name / "model.safetensors").write_bytes(name.encode())  # weights: not in the key
    a = st.shared_tokenizer(tmp_path / "a", load, "test", by_content=True)
    assert st.shared_tokenizer(tmp_path / "b", load, "test", by_content=True) is a and len(loads) == 1
    assert st.shared_tokenizer(tmp_path / "c", load, "test", by_content=True) is not a and len(loads) == 2
    assert st.shared_tokenizer(tmp_path / "b", load, "test") is not a and len(loads) == 3  # by folder
    st.forget_tokenizers()


def test_two_clips_written_into_two_caches_share_their_tokenizer(tmp_path):
    from litelvlm.clip import load_clip
    from litelvlm.clip.random_init import save_random_hf_clip

    st.forget_tokenizers()
    a, b = (load_clip(str(save_random_hf_clip(tmp_path / name, "tiny", seed=0)), "hf") for name in "ab")
    assert a.tokenizer is b.tokenizer
    assert a.tokenizer("a photo").input_ids == b.tokenizer("a photo").input_ids
    st.forget_tokenizers()


def test_by_content_reads_an_unchanged_file_once_and_a_rewritten_one_again(tmp_path, monkeypatch):
    """The content key hashes each file once while its size and times stand (CLIP's 3.6 MB ``tokenizer.json``
    was hashed at every load); a rewritten file is read and hashed again."""
    (tmp_path / "tokenizer.json").write_text("{}")
    read, real = [], st._read_digest
    monkeypatch.setattr(st, "_read_digest", lambda path: read.append(path) or real(path))
    st.forget_tokenizers()
    first = st._content_signature(tmp_path)
    assert st._content_signature(tmp_path) == first and len(read) == 1
    (tmp_path / "tokenizer.json").write_text('{"changed": 1}')
    os.utime(tmp_path / "tokenizer.json", ns=(1, 1))
    assert st._content_signature(tmp_path) != first and len(read) == 2
    st.forget_tokenizers()


def test_a_process_keeps_a_bounded_number_of_file_digests(tmp_path, monkeypatch):
    monkeypatch.setattr(st, "KEEP_DIGESTS", 3)
    st.forget_tokenizers()
    for i in range(7):
        (tmp_path / f"{i}.json").write_text(str(i))
    st._content_signature(tmp_path)
    assert 0 < len(st._DIGESTS) <= 3
    st.forget_tokenizers()
