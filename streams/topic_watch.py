"""Notices that the broker lost cityloop's topics, as the in-memory embedded broker does on restart.

A worker that carried on after such a loss would be stuck: the embedded broker still takes
records for the vanished topics and serves them, but refuses every offset commit for them
(aiokafka retries those forever), and a consumer's old positions lie beyond the new, empty logs,
where a fetch waits silently instead of failing. What recovers cleanly is a fresh start: topics
created again, the case book rebuilt from what the topics now hold, offsets from the beginning.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from kafka.errors import KafkaError

from cityloop.settings import Settings
from streams.topics import topic_admin, topic_ids

log = logging.getLogger(__name__)


def watch_for_topic_loss(
    settings: Settings, on_loss: Callable[[list[str]], None], interval_s: float = 1.0
) -> threading.Thread:
    """Call `on_loss` with the names of the topics that vanished or came back under a new id,
    once; from a daemon thread that polls the broker every `interval_s`, over one admin client
    kept open (a client made for every poll cost the worker ~8% of its CPU in a profile)."""
    known = topic_ids(settings)

    def watch() -> None:
        admin: Any = None
        while True:
            time.sleep(interval_s)
            try:
                admin = admin or topic_admin(settings)
                now = topic_ids(settings, admin)
            except (KafkaError, OSError):
                if admin is not None:
                    admin.close()
                admin = None  # the broker is away: a fresh client when it answers again
                continue
            lost = sorted(name for name, topic_id in known.items() if now.get(name) != topic_id)
            if lost:
                on_loss(lost)
                return

    thread = threading.Thread(target=watch, name="cityloop-topic-watch", daemon=True)
    thread.start()
    return thread


def forget_committed_offsets(settings: Settings, group_id: str) -> None:
    """Drop a consumer group's committed offsets after a topic loss. They point into the lost
    logs, and the process that ran before may have committed them again once a topic came back;
    a worker that resumed from them would wait past the new logs' first records."""
    from kafka import KafkaAdminClient

    admin = KafkaAdminClient(bootstrap_servers=settings.bootstrap_servers)
    try:
        outcome = admin.delete_groups([group_id]).get(group_id)
    finally:
        admin.close()
    if outcome != "OK":  # e.g. Apache Kafka while the old member's session lasts
        log.warning("could not forget the offsets of group %s: %s", group_id, outcome)
