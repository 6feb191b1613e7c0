"""Figure families, one module each: importing a module registers its family with
:func:`analysis.figures.register` (``make_smoke``, ``read`` and ``draw`` functions)."""
