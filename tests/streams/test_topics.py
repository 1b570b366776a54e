"""The topics: created once, and a case topic with other partitions than the settings say is
refused before anything is decided on it."""

from __future__ import annotations

import pytest

from cityloop.settings import Settings
from streams.topics import TopicLayoutError, ensure_topics, topics_for
from tests.conftest import unique_prefix

pytestmark = pytest.mark.broker


def test_case_topics_with_other_partitions_than_the_settings_are_refused(
    kafka_bootstrap: str,
) -> None:
    prefix = unique_prefix("layout")
    four = Settings(
        kafka_bootstrap_servers=kafka_bootstrap, topic_prefix=prefix, topic_partitions=4
    )
    names = topics_for(four)
    created = ensure_topics(four)
    assert {names.incidents, names.case_control, names.case_events} <= set(created)
    assert ensure_topics(four) == []  # all there, as they should be
    two = four.model_copy(update={"topic_partitions": 2})
    with pytest.raises(TopicLayoutError) as refused:
        ensure_topics(two)
    for topic in (names.incidents, names.case_control, names.case_events):
        assert f"{topic} has 4" in str(refused.value)
