"""A REFER folder's layout, checked before anything loads: the datasets and their split schemes, and
``refs(<split-by>).p`` and ``instances.json`` in the folder or in its ``<dataset>/``
(:func:`litelvlm.data.refer.load_refer` reads them there). This module imports nothing heavy (the studies'
light options call it)."""

from __future__ import annotations

from pathlib import Path

from .errors import LiteLVLMError

#: dataset -> the ``split_by`` values its official release provides (``refs(<split-by>).p``)
SPLITS_BY: dict[str, tuple[str, ...]] = {
    "refcoco": ("unc", "google"),
    "refcoco+": ("unc",),
    "refcocog": ("umd", "google"),
}
#: the REFER datasets, and every split scheme of theirs (``--dataset``, ``--split-by``)
REFER_DATASETS: tuple[str, ...] = tuple(SPLITS_BY)
SPLIT_SCHEMES: tuple[str, ...] = tuple(dict.fromkeys(s for schemes in SPLITS_BY.values() for s in schemes))


def find_refer_file(folder: str | Path, name: str, dataset: str) -> Path:
    """``folder/name`` or ``folder/dataset/name``; neither is a :class:`LiteLVLMError` naming both."""
    folder = Path(folder)
    for cand in (folder / name, folder / dataset / name):
        if cand.is_file():
            return cand
    raise LiteLVLMError(f"{name!r} not found in --refer-dir {str(folder)!r} (nor in "
                        f"{str(folder / dataset)!r})")


def check_refer_folder(refer_dir: str | Path, dataset: str = "refcoco", split_by: str = "unc",
                       instances: bool = True) -> None:
    """Refuse a ``--refer-dir`` without ``refs(<split_by>).p`` (and ``instances.json``, unless ``instances``
    is False) before anything loads, with the message :func:`~litelvlm.data.refer.load_refer` gives."""
    for name in (f"refs({split_by}).p", "instances.json")[:2 if instances else 1]:
        find_refer_file(refer_dir, name, dataset)


__all__ = ["REFER_DATASETS", "SPLITS_BY", "SPLIT_SCHEMES", "check_refer_folder", "find_refer_file"]
