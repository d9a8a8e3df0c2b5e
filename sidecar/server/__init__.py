"""The gRPC service: process, servicer, stream sessions, auth, settings, protobuf conversion."""
