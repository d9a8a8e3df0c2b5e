"""Event batching and verdicts: detections -> batches per camera -> LLM risk verdicts -> streams."""
