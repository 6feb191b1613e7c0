"""Run folders that lose nothing: atomic writes, the commit journal, locks, stop signals, records of earlier
runs, the disk cache."""
