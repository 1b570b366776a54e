"""Kafka wiring: topics, clients, the Faust app and its agents."""
