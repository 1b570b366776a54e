"""Consumer settings Faust does not expose.

Faust creates its consumer with fetch_max_wait_ms=1500, hard-coded. A broker that holds a fetch
until that wait runs out when data arrives meanwhile (the embedded broker does) then adds up to
1.5 s per stage to every event's latency; the bench measured a p50 of 619 ms at 100 events/s
with two stages. A short wait, though, is a fetch and its answer fifty times a second on an
idle topic: an idle worker took 14% of a core and its embedded broker another 14%.

So the wait follows the traffic: short while records come, long once none has come for
`QUIET_AFTER_S`. The first record after a quiet spell may wait up to `QUIET_FETCH_WAIT_MS` more
per stage on a broker that holds fetches (Apache Kafka answers as soon as data arrives); with
the long wait, an idle worker took 10% of a core and its broker 4%.
"""

from __future__ import annotations

from typing import Any

from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread

FETCH_MAX_WAIT_MS = 20
QUIET_FETCH_WAIT_MS = 200
QUIET_AFTER_S = 5.0

_create_worker_consumer = AIOKafkaConsumerThread._create_worker_consumer


def _with_short_fetch_wait(self: Any, transport: Any) -> Any:
    consumer = _create_worker_consumer(self, transport)
    consumer._fetch_max_wait_ms = FETCH_MAX_WAIT_MS  # read when the consumer starts its fetcher
    return consumer


def shorten_fetch_wait() -> None:
    AIOKafkaConsumerThread._create_worker_consumer = _with_short_fetch_wait  # type: ignore[method-assign]


def _fetcher(app_consumer: Any) -> Any:
    """The aiokafka fetcher under a Faust consumer, None before it has started."""
    thread = getattr(app_consumer, "_thread", None)
    consumer = getattr(thread, "_consumer", None)
    fetcher = getattr(consumer, "_fetcher", None)
    return fetcher if hasattr(fetcher, "_fetch_max_wait_ms") else None


def set_fetch_wait(app_consumer: Any, wait_ms: int) -> bool:
    """Make the running consumer's next fetches wait at most `wait_ms`; False when it has no
    fetcher yet. The fetcher reads the value for each request it makes, in the consumer's
    thread; one int rebound is safe from the app's."""
    fetcher = _fetcher(app_consumer)
    if fetcher is None:
        return False
    fetcher._fetch_max_wait_ms = wait_ms
    return True


def fetch_wait(app_consumer: Any) -> int | None:
    """The wait the running consumer's fetches use now."""
    fetcher = _fetcher(app_consumer)
    return None if fetcher is None else int(fetcher._fetch_max_wait_ms)
