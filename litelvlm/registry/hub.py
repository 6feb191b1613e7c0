"""A family's released checkpoint on the Hugging Face hub: whether the hub is switched off, how to fetch one
by hand, and its local snapshot (downloaded, or the cached one offline). This module imports nothing heavy:
huggingface_hub is named lazily."""

from __future__ import annotations

import os

from ..errors import LiteLVLMError
from ..models.family_card import FamilyCard, Lazy


def offline() -> bool:
    """Whether the Hugging Face hub is switched off (``HF_HUB_OFFLINE``, as huggingface_hub reads it)."""
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "on", "yes", "true")


def download_hint(repo_id: str) -> str:
    """How to get a released checkpoint onto a machine by hand, and how to pass it."""
    return (f"download it where the network allows with `huggingface-cli download {repo_id} --local-dir DIR` "
            f"(or python -c \"from huggingface_hub import snapshot_download; "
            f"snapshot_download('{repo_id}', local_dir='DIR')\") and pass --model DIR")


def check_cached(repo_id: str, family: FamilyCard) -> None:
    """Refuse ``repo_id``, ``family``'s released checkpoint, offline (``HF_HUB_OFFLINE=1``) with no cached
    snapshot: one line naming the download command."""
    if not offline():
        return
    cached = Lazy("huggingface_hub", "try_to_load_from_cache").get()(repo_id, "config.json")
    if not isinstance(cached, str):
        raise LiteLVLMError(f"model {repo_id!r} is a released {family.display_name} checkpoint on the "
                            "Hugging Face hub: the hub is offline (HF_HUB_OFFLINE=1) and no snapshot of it "
                            f"is cached; {download_hint(repo_id)}")


def snapshot(repo_id: str, family: FamilyCard) -> str:
    """The local folder of ``repo_id``, ``family``'s released checkpoint: downloaded with huggingface_hub's
    ``snapshot_download`` into the Hugging Face cache (reused from there; offline, ``HF_HUB_OFFLINE=1``, only
    the cached snapshot); one that cannot be had is one line naming the download command."""
    # no network: the cached snapshot only, at once (the hub client would retry for about 30 s)
    local = offline() or not Lazy("litelvlm.clip.hf", "hub_reachable").get()()
    try:
        return Lazy("huggingface_hub", "snapshot_download").get()(repo_id, local_files_only=local)
    except Exception as e:  # noqa: BLE001 - offline, no network, no such repository: the same advice
        why = ("the hub is offline (HF_HUB_OFFLINE=1) and no snapshot of it is cached" if offline()
               else "the hub cannot be reached and no snapshot of it is cached" if local
               else f"it could not be downloaded ({type(e).__name__}: {e})")
        raise LiteLVLMError(f"model {repo_id!r} is a released {family.display_name} checkpoint on the "
                            f"Hugging Face hub: {why}; {download_hint(repo_id)}") from e
