"""JetStream workers: a runtime (consumer, acks, retries, DLQ, shutdown, health, relay) and
the report, sync and commands workers built on afasa_ops.platform."""
