"""What the grounding studies share: which runs, batches, scoring, the model's settings."""
