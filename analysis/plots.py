"""Every plot function of the project in one namespace: ``from analysis import plots``.

Re-exports the public names of each area module in :mod:`analysis.plotting`
(``clip_studies``, ``grounding``, ``importance``, ``efficiency``, ``retention``,
``selection``, ...), so notebooks and ``litelvlm figures`` call ``plots.plot_...``.
A module's ``__all__`` is used when it has one; otherwise its public functions. Area
modules are found at import time, so a new one needs no edit here.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import warnings

import analysis.plotting as _plotting

#: area module name -> the names it contributes here
AREAS: dict[str, list[str]] = {}


def _public_names(module) -> list[str]:
    if hasattr(module, "__all__"):
        return list(module.__all__)
    return [n for n, obj in vars(module).items()
            if not n.startswith("_") and inspect.isfunction(obj) and obj.__module__ == module.__name__]


def _export_all() -> None:
    g = globals()
    for info in sorted(pkgutil.iter_modules(_plotting.__path__), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{_plotting.__name__}.{info.name}")
        names = _public_names(module)
        for n in names:
            owner = next((a for a, ns in AREAS.items() if n in ns), None)
            if owner is not None:  # the first area keeps the name; tests/test_figures_plots.py fails on it
                warnings.warn(f"plot name {n!r} is defined by both analysis.plotting.{owner} and "
                              f"analysis.plotting.{info.name}; analysis.plots keeps the first", stacklevel=2)
                continue
            g[n] = getattr(module, n)
        AREAS[info.name] = names


_export_all()
__all__ = sorted(n for names in AREAS.values() for n in names)
