"""Replication of sessions through NATS JetStream (see docs/sync.md)."""
