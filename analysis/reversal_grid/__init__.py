"""Figure set 10: the similarity reversal on UniPixel's merged grid (``litelvlm reversal --grid unipixel``);
the study itself is :mod:`analysis.reversal`."""
