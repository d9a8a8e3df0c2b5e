"""The enrichment models: each behind `EnrichmentModel` (load / warmup / infer / unload)."""
