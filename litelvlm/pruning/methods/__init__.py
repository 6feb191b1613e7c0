"""Built-in selectors; importing this package registers them."""

from . import litelvlm, llm_stubs, random_sel, topsim, visionzip, vispruner  # noqa: F401
