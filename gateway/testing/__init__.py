"""Public test kit (in-memory sources/sinks, flow helpers, connector contract suite, Kafka fixtures)."""
