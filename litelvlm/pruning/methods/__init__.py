"""Built-in selectors; importing this package registers them."""

from . import divprune, litelvlm, prumerge, random_sel, tome, topsim, visionzip, vispruner  # noqa: F401
