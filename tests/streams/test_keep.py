"""The compacted topics' state (areas' modes, topology and classifier versions) outlives an
in-memory broker: saved to a folder from one broker, put back on a fresh one, newest per key."""

from __future__ import annotations

from pathlib import Path

import pytest
from kafka import KafkaProducer

from cityloop.broker import EmbeddedBroker, free_port
from cityloop.settings import Settings
from streams.history import read_records
from streams.keep import put_back_kept, save_kept
from streams.topics import ensure_topics, topics_for

pytestmark = pytest.mark.broker


def records_of(
    settings: Settings, topic: str
) -> list[tuple[bytes | None, bytes | None, list[tuple[str, bytes]]]]:
    return [
        (record.key, record.value, list(record.headers or ()))
        for record in read_records(settings.bootstrap_servers, topic)
    ]


def test_the_kept_topics_come_back_on_a_fresh_broker_newest_per_key(tmp_path: Path) -> None:
    port = free_port()
    settings = Settings(kafka_bootstrap_servers=f"127.0.0.1:{port}", topic_prefix="keep")
    names = topics_for(settings)
    model = bytes(range(256)) * 4000  # a classifier model: binary, about 1 MB
    with EmbeddedBroker(port=port):
        ensure_topics(settings)
        producer = KafkaProducer(
            bootstrap_servers=settings.bootstrap_servers, max_request_size=8 << 20
        )
        for key, value in ((b"510104", b"emergency"), (b"510105", b"emergency")):
            producer.send(names.modes, key=key, value=value)
        producer.send(names.modes, key=b"510104", value=b"normal")  # switched back since
        producer.send(names.topology, key=b"topology", value=b"version: 1")
        producer.send(names.topology, key=b"topology", value=b"version: 2")
        producer.send(names.classifier, key=b"classifier", value=model, headers=[("v", b"7")])
        producer.flush()
        producer.close()
        assert save_kept(settings, tmp_path / "kept") == {
            "modes": 2,
            "topology": 1,
            "classifier": 1,
        }
    with EmbeddedBroker(port=port):  # memory storage: nothing of the first broker is left
        ensure_topics(settings)
        assert records_of(settings, names.modes) == []
        assert put_back_kept(settings, tmp_path / "kept") == {
            "modes": 2,
            "topology": 1,
            "classifier": 1,
        }
        assert records_of(settings, names.modes) == [
            (b"510105", b"emergency", []),
            (b"510104", b"normal", []),
        ]
        assert records_of(settings, names.topology) == [(b"topology", b"version: 2", [])]
        assert records_of(settings, names.classifier) == [(b"classifier", model, [("v", b"7")])]


def test_nothing_kept_puts_nothing_back(tmp_path: Path) -> None:
    settings = Settings(kafka_bootstrap_servers="127.0.0.1:1", topic_prefix="keep")
    assert put_back_kept(settings, tmp_path / "kept") == {}  # no broker needed for nothing
