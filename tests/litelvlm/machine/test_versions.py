"""``run_versions()`` reads the versions from the distributions' metadata: they equal what the imported
libraries report, so ``config.json`` records the same values as when the libraries were imported."""

from __future__ import annotations


def test_run_versions_equal_the_imported_libraries():
    import numpy
    import open_clip
    import pandas
    import torch
    import transformers

    import litelvlm
    from litelvlm.machine.versions import dist_version, run_versions

    v = run_versions()
    assert v["torch"] == torch.__version__ and v["numpy"] == numpy.__version__
    assert v["transformers"] == transformers.__version__
    assert v["open_clip"] == open_clip.__version__
    assert v["pandas"] == pandas.__version__ and v["litelvlm"] == litelvlm.__version__
    assert dist_version("no-such-distribution-here") is None
