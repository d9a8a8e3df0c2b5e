"""The gRPC link to the sidecar: channel and one-shot calls (client.py), the long-lived stream that
sends queued frames and receives results and verdicts (stream.py), protobuf <-> our types
(convert.py), and the generated stubs (proto/)."""
