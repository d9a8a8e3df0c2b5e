"""Enrichment: what the key frames of a batch show beyond boxes (attributes, identities, plates,
posture, distance), from models that share one memory budget (zoo.py)."""
