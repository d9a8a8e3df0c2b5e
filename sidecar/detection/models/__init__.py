"""Model classes behind a small interface (load, warmup, infer)."""
