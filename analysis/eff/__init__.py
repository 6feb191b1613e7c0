"""Efficiency study internals: architectures, FLOP counts, timing, memory and the comparison table."""
