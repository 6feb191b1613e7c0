"""What a reader sees: the screen, the figure style, plots, captions and caveats, figure sets."""
