"""The one Kafka client factory: producers and consumers configured the same way everywhere."""

from __future__ import annotations

from typing import Any

from cityloop.settings import Settings


def async_producer(settings: Settings, **overrides: Any) -> Any:
    """An aiokafka producer that waits for every in-sync replica (acks=all)."""
    from aiokafka import AIOKafkaProducer

    options: dict[str, Any] = {
        "bootstrap_servers": settings.bootstrap_servers,
        "acks": "all",
        "linger_ms": 5,
        "enable_idempotence": False,
        "request_timeout_ms": int(settings.publish_timeout_s * 1000),
        "max_request_size": max(settings.max_event_bytes * 2, 1_048_576),
    }
    options.update(overrides)
    return AIOKafkaProducer(**options)


def async_consumer(settings: Settings, *topics: str, **overrides: Any) -> Any:
    from aiokafka import AIOKafkaConsumer

    timeout_ms = int(settings.kafka_session_timeout_s * 1000)
    options: dict[str, Any] = {
        "bootstrap_servers": settings.bootstrap_servers,
        "enable_auto_commit": False,
        "auto_offset_reset": "earliest",
        "session_timeout_ms": timeout_ms,
        "heartbeat_interval_ms": max(1000, timeout_ms // 3),
    }
    options.update(overrides)
    return AIOKafkaConsumer(*topics, **options)
