"""The one place that names cityloop's topics and creates them."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from cityloop.contracts import Source
from cityloop.settings import Settings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TopicSpec:
    name: str
    partitions: int
    compacted: bool = False


@dataclass(frozen=True)
class Topics:
    """Topic names under one prefix (so tests and tenants can share a broker)."""

    prefix: str = "cityloop"

    def source(self, source: Source) -> str:
        """Raw CloudEvents from one kind of departmental system."""
        return f"{self.prefix}.events.{source.value}"

    @property
    def sources(self) -> dict[str, Source]:
        return {self.source(src): src for src in Source}

    @property
    def incidents(self) -> str:
        """Validated, normalised incidents, keyed by correlation key."""
        return f"{self.prefix}.incidents"

    @property
    def case_events(self) -> str:
        """Every case's history (CaseOpened, CaseDispatched, ...), keyed by case id."""
        return f"{self.prefix}.case-events"

    @property
    def case_control(self) -> str:
        """Commands, clock ticks, mode switches and merges for the case partitions, keyed like
        the incidents (by the case's correlation key) so each lands where its case lives."""
        return f"{self.prefix}.case-control"

    @property
    def command_outcomes(self) -> str:
        """Whether each command was applied or rejected and why, keyed by command id."""
        return f"{self.prefix}.command-outcomes"

    @property
    def dead_letters(self) -> str:
        return f"{self.prefix}.dead-letters"

    @property
    def modes(self) -> str:
        """平急切换: the mode each switched area is in (compacted, keyed by area code)."""
        return f"{self.prefix}.modes"

    @property
    def topology(self) -> str:
        """Topology versions (compacted, one key)."""
        return f"{self.prefix}.topology"

    @property
    def classifier(self) -> str:
        """Text classifier versions for the dispatch desk's triage (compacted, one key)."""
        return f"{self.prefix}.classifier"

    def specs(self, partitions: int) -> list[TopicSpec]:
        return [
            *(TopicSpec(self.source(src), partitions) for src in Source),
            TopicSpec(self.incidents, partitions),
            TopicSpec(self.case_events, partitions),
            TopicSpec(self.case_control, partitions),
            TopicSpec(self.command_outcomes, partitions),
            TopicSpec(self.dead_letters, partitions),
            TopicSpec(self.modes, 1, compacted=True),
            TopicSpec(self.topology, 1, compacted=True),
            TopicSpec(self.classifier, 1, compacted=True),
        ]


def topics_for(settings: Settings) -> Topics:
    return Topics(settings.topic_prefix)


class TopicLayoutError(RuntimeError):
    """The case topics do not have the partitions the settings say: a case's records and its
    events would be decided on one partition and kept on another."""


def ensure_topics(settings: Settings) -> list[str]:
    """Create every topic that does not exist yet; return the names created. Raises
    `TopicLayoutError` if a case topic that exists has other than `topic_partitions`
    partitions."""
    from kafka import KafkaAdminClient
    from kafka.admin import NewTopic
    from kafka.errors import TopicAlreadyExistsError

    specs = topics_for(settings).specs(settings.topic_partitions)
    admin = KafkaAdminClient(
        bootstrap_servers=settings.bootstrap_servers, client_id="cityloop-admin"
    )
    try:
        existing = set(admin.list_topics())
        missing = [
            NewTopic(
                name=spec.name,
                num_partitions=spec.partitions,
                replication_factor=settings.replication_factor,
                topic_configs={"cleanup.policy": "compact"} if spec.compacted else {},
            )
            for spec in specs
            if spec.name not in existing
        ]
        created: list[str] = []
        for topic in missing:
            # one request each, so a topic created meanwhile by another process fails alone
            try:
                admin.create_topics([topic])
                created.append(topic.name)
            except TopicAlreadyExistsError:
                pass
        if created:
            log.info("created topics: %s", ", ".join(created))
        _check_case_partitions(admin, topics_for(settings), settings.topic_partitions)
        return created
    finally:
        admin.close()


def _check_case_partitions(admin: Any, names: Topics, partitions: int) -> None:
    """The incidents, the case-control records and the case events are partitioned alike, by
    `topic_partitions`: a case's partition is its correlation key's, its events are written to
    the partition that decided them, and a tick goes to each partition by number."""
    case_topics = {names.incidents, names.case_control, names.case_events}
    # every topic in one request: naming them would let a broker auto-create a missing one
    found = {
        t["name"]: len(t["partitions"]) for t in admin.describe_topics() if t["name"] in case_topics
    }
    wrong = {name: count for name, count in sorted(found.items()) if count != partitions}
    if wrong:
        raise TopicLayoutError(
            "the case topics must have CITYLOOP_TOPIC_PARTITIONS="
            f"{partitions} partitions each, but "
            + ", ".join(f"{name} has {count}" for name, count in wrong.items())
            + ": set CITYLOOP_TOPIC_PARTITIONS to what the topics have, or recreate them"
        )


def topic_admin(settings: Settings) -> Any:
    """An admin client for watching topics: short timeouts, reconnects soon."""
    from kafka import KafkaAdminClient

    return KafkaAdminClient(
        bootstrap_servers=settings.bootstrap_servers,
        client_id="cityloop-topic-watch",
        request_timeout_ms=3000,
        reconnect_backoff_max_ms=1000,  # a watch asks again soon, not after a growing backoff
    )


def topic_ids(settings: Settings, admin: Any | None = None) -> dict[str, str | None]:
    """The broker's id of each cityloop topic it has now (absent: the broker has no such topic).
    A topic deleted and created again, as by an in-memory broker's restart, has a new id.
    `admin`: a client to ask with (kept open by a watch); without one, a client for this call."""
    ours = {spec.name for spec in topics_for(settings).specs(settings.topic_partitions)}
    own = admin is None
    client: Any = topic_admin(settings) if admin is None else admin
    try:
        # every topic in one request: naming ours would let a broker auto-create the missing
        return {t["name"]: t["topic_id"] for t in client.describe_topics() if t["name"] in ours}
    finally:
        if own:
            client.close()
