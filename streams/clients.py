"""The one Kafka client factory: producers and consumers configured the same way everywhere."""

from __future__ import annotations

import time
from typing import Any

from aiokafka import AIOKafkaProducer

from cityloop.settings import Settings

METADATA_CHECK_S = 1.0


class CheckedProducer(AIOKafkaProducer):  # type: ignore[misc]
    """An aiokafka producer that asks the broker for fresh metadata before a send when it has not
    for a second. Its cache would otherwise still name the topics of a broker that restarted
    empty (the embedded broker keeps them in memory); that broker takes records for a topic it
    does not know and drops them when the topic is created again, after a 202 was answered."""

    _metadata_checked = 0.0

    async def send(self, topic: str, *args: Any, **kwargs: Any) -> Any:
        if time.monotonic() - self._metadata_checked > METADATA_CHECK_S:
            await self.client.force_metadata_update()
            self._metadata_checked = time.monotonic()
        return await super().send(topic, *args, **kwargs)


def async_producer(settings: Settings, **overrides: Any) -> Any:
    """An aiokafka producer that waits for every in-sync replica (acks=all)."""
    options: dict[str, Any] = {
        "bootstrap_servers": settings.bootstrap_servers,
        "acks": "all",
        "linger_ms": 5,
        "enable_idempotence": False,
        "request_timeout_ms": int(settings.publish_timeout_s * 1000),
        "max_request_size": max(settings.max_event_bytes * 2, 1_048_576),
    }
    options.update(overrides)
    return CheckedProducer(**options)


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
