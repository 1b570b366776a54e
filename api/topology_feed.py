"""The topology the API validates against: the version in service on the topology topic (the one
the worker routes with), followed as `cityloop topology publish` puts new ones there."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

from aiokafka import TopicPartition

from cityloop.settings import Settings
from streams.clients import async_consumer
from streams.history import read_records
from streams.topics import topics_for
from topology import Topology, TopologyError, load_topology_text

log = logging.getLogger(__name__)

RETRY_S = 1.0
"""How soon to look again for a topic not created yet, or to read again after a broker error."""


class TopologyFeed:
    """Reads the topology topic: the newest version at start (`newest`), then each one published
    after it (`run`), handed to `put_in_service` once compiled. A version that does not load is
    skipped with a warning and the one in service stays: the worker, which meets the same
    version, publishes the outcome for the operator."""

    def __init__(self, settings: Settings, put_in_service: Callable[[Topology], None]) -> None:
        self.settings = settings
        self.topic = topics_for(settings).topology
        # one partition, one key (streams/topics.py): every version is on partition 0
        self.partition = TopicPartition(self.topic, 0)
        self.put_in_service = put_in_service
        self.next_offset: int | None = None
        """The first offset not read yet; None: nothing read (a topic empty or not created)."""

    async def newest(self) -> Topology | None:
        """The newest version on the topic now, if it loads (None: none published, or it does
        not load): what the worker adopts before its first decision. `run` goes on from where
        this read stopped."""
        bootstrap = self.settings.bootstrap_servers
        records = await asyncio.to_thread(lambda: list(read_records(bootstrap, self.topic)))
        return await self._newest_of(records[-1:], records)

    async def _newest_of(self, candidates: list[Any], read: list[Any]) -> Topology | None:
        """The newest of `candidates` that loads; `read`: every record read, to go on after."""
        if read:
            self.next_offset = read[-1].offset + 1
        for record in reversed(candidates):
            if record.value is None:
                continue
            try:
                # off the event loop: a city's topology takes seconds to compile
                topology = await asyncio.to_thread(
                    load_topology_text, record.value, source=self.topic
                )
            except TopologyError as exc:
                log.warning("topology version at %s:%d ignored: %s", self.topic, record.offset, exc)
                continue
            log.warning(
                "topology %s in service (%s:%d)", topology.version, self.topic, record.offset
            )
            return topology
        return None

    async def run(self, stop: asyncio.Event) -> None:
        """Follow the topic until `stop`: of each batch read, the newest version that loads is put
        in service (the ones before it would be replaced at once)."""
        while not stop.is_set():
            consumer = async_consumer(self.settings, group_id=None)
            try:
                await consumer.start()
                if not await self._created(consumer, stop):
                    return
                consumer.assign([self.partition])
                if self.next_offset is None:
                    await consumer.seek_to_beginning(self.partition)
                else:
                    consumer.seek(self.partition, self.next_offset)
                while not stop.is_set():
                    batches = await consumer.getmany(timeout_ms=500)
                    await self._take([record for batch in batches.values() for record in batch])
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # a broker outage: read on from where it stopped
                log.warning("following %s paused: %s: %s", self.topic, type(exc).__name__, exc)
                await _wait(stop, RETRY_S)
            finally:
                await consumer.stop()

    async def _take(self, records: list[Any]) -> None:
        # the newest that loads: where the worker, adopting each in turn and keeping the one in
        # service when one does not load, ends up too
        if (topology := await self._newest_of(records, records)) is not None:
            self.put_in_service(topology)

    async def _created(self, consumer: Any, stop: asyncio.Event) -> bool:
        """Wait until the topic exists (the worker or `cityloop topics` creates it): assigning a
        topic the broker lacks could make it create one, uncompacted. False: stopped first."""
        while not stop.is_set():
            if self.topic in await consumer.topics():  # all topics' metadata: names none
                return True
            await _wait(stop, RETRY_S)
        return False


async def _wait(stop: asyncio.Event, seconds: float) -> None:
    """Wait `seconds`, or less if `stop` is set meanwhile."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)
