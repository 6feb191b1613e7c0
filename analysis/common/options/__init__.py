"""The studies' shared command-line options and their defaults (light: no torch)."""
