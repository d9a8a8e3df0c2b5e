"""How the integration is reached besides entities: the websocket and HTTP API of events and
their media, signed media URLs, the zone editor commands, and the Assist LLM API."""
