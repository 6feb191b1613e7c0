"""Model strings, families and their cards, checkpoint folders, random weights and quantization."""
