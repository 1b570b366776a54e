"""Correlation (fuzzy dedup): the same matter across sources is one case; a little too far or too
late is another; a cell border or late arrival does not split a case."""

from __future__ import annotations

import math
from datetime import timedelta
from typing import Any

import pytest

from cityloop.contracts import GeoPoint, Origin, Severity, Source
from handlers.case import CaseState, CaseStatus
from handlers.cells import CELL_DEGREES, METRES_PER_DEGREE_LAT, correlation_key
from handlers.correlate import CorrelationDecision, SeenReport, correlate
from tests.handlers.test_lifecycle import T0, TINY, incident
from topology import UnroutableError

HERE = GeoPoint(lat=30.6601, lon=104.0801)  # in community 510104001001
RADIUS = TINY.category("waterlogging").correlation.radius_m  # type: ignore[union-attr]
WINDOW = timedelta(minutes=TINY.category("waterlogging").correlation.window_minutes)  # type: ignore[union-attr]


def north(point: GeoPoint, metres: float) -> GeoPoint:
    return GeoPoint(lat=point.lat + metres / METRES_PER_DEGREE_LAT, lon=point.lon)


class Partition:
    """The case partition's state, as the cases agent keeps it, for one test."""

    def __init__(self) -> None:
        self.seen: dict[str, SeenReport] = {}
        self.cases: dict[str, CaseState] = {}
        self.devices: dict[str, str] = {}

    def take(self, number: int, **fields: Any) -> CorrelationDecision:
        fields.setdefault("category", "waterlogging")
        fields.setdefault("location", HERE)
        report = incident(number=number, **fields)
        key = correlation_key(TINY, report)
        seen = self.seen.get(report.idempotency_key)
        candidates = [c for c in self.cases.values() if c.correlation_key == key and c.is_open]
        device_case = self.cases.get(self.devices.get(report.device_id or "", ""))
        decision = correlate(
            report,
            seen,
            self.cases.get(seen.case_id) if seen else None,
            candidates,
            device_case,
            TINY,
            {},
            T0,
        )
        if decision.state is not None:
            self.cases[decision.state.case_id] = decision.state
        if seen is None:
            self.seen[report.idempotency_key] = SeenReport(decision.case_id, report.origin)
            if report.device_id:
                self.devices[report.device_id] = decision.case_id
        return decision


def test_one_flooded_underpass_across_sources_is_one_case() -> None:
    partition = Partition()
    first = partition.take(1, source=Source.HOTLINE)
    reasons = [
        partition.take(2, source=Source.HOTLINE, location=north(HERE, 80)).reason,
        partition.take(3, source=Source.IOT, sensor_type="water_level", device_id="WL-1").reason,
        partition.take(
            4, source=Source.GRID, location=north(HERE, -120), at=T0 + timedelta(minutes=20)
        ).reason,
    ]
    assert first.reason == "new_case"
    assert reasons == ["attached_to_open_case"] * 3
    case = partition.cases[first.case_id]
    assert len(case.reports) == 4 and case.sources == {Source.HOTLINE, Source.IOT, Source.GRID}
    assert len(partition.cases) == 1


@pytest.mark.parametrize(
    ("fields", "same_case"),
    [
        ({"location": north(HERE, RADIUS * 0.95)}, True),
        ({"location": north(HERE, RADIUS * 1.05)}, False),  # just outside the radius
        ({"at": T0 + WINDOW - timedelta(minutes=1)}, True),
        ({"at": T0 + WINDOW + timedelta(minutes=1)}, False),  # just outside the window
        ({"at": T0 - WINDOW + timedelta(minutes=1)}, True),  # late by almost a window: still joins
        ({"at": T0 - WINDOW - timedelta(minutes=1)}, False),
        ({"category": "water_main_burst"}, True),  # same family (flooding), same place
        ({"category": "pothole"}, False),  # another family
    ],
)
def test_radius_window_and_family_edges(fields: dict[str, Any], same_case: bool) -> None:
    partition = Partition()
    first = partition.take(1)
    second = partition.take(2, **fields)
    assert (second.case_id == first.case_id) is same_case, second.reason


def test_a_duplicate_just_across_a_cell_border_meets_in_one_partition() -> None:
    line = math.ceil(HERE.lat / CELL_DEGREES) * CELL_DEGREES  # a lattice edge north of HERE
    south_side = GeoPoint(lat=line - 20 / METRES_PER_DEGREE_LAT, lon=HERE.lon)
    north_side = GeoPoint(lat=line + 20 / METRES_PER_DEGREE_LAT, lon=HERE.lon)
    keys = {
        correlation_key(TINY, incident("waterlogging", number=n, location=point))
        for n, point in [(1, south_side), (2, north_side)]
    }
    assert len(keys) == 1
    partition = Partition()
    first = partition.take(1, location=south_side)
    assert partition.take(2, location=north_side).case_id == first.case_id


def test_far_apart_reports_get_different_keys() -> None:
    far = GeoPoint(lat=HERE.lat + 3 * CELL_DEGREES, lon=HERE.lon)
    assert correlation_key(TINY, incident(location=HERE)) != correlation_key(
        TINY, incident(number=2, location=far)
    )


def test_exact_duplicate_and_replayed_record() -> None:
    partition = Partition()
    origin = Origin(topic="t", partition=0, offset=5)
    first = partition.take(1, origin=origin)
    replayed = partition.take(1, origin=origin)
    assert replayed.reason == "replayed_record" and replayed.events == ()
    resent = partition.take(1, origin=origin.model_copy(update={"offset": 9}))
    assert resent.reason == "exact_duplicate" and resent.case_id == first.case_id
    assert [e.type for e in resent.events] == ["DuplicateReceived"]
    assert partition.cases[first.case_id].duplicates == 1


def test_a_repeating_device_attaches_and_its_clearing_is_recorded() -> None:
    partition = Partition()
    alarm = {"source": Source.IOT, "sensor_type": "water_level", "device_id": "WL-7"}
    first = partition.take(1, **alarm)
    assert first.reason == "new_lead"
    assert partition.take(2, **alarm, location=north(HERE, RADIUS * 3)).reason == "device_repeat"
    cleared = partition.take(3, **alarm, cleared=True, at=T0 + timedelta(minutes=30))
    assert cleared.case_id == first.case_id
    assert partition.cases[first.case_id].cleared_devices == ("WL-7",)
    with pytest.raises(UnroutableError) as caught:
        partition.take(
            4,
            source=Source.IOT,
            sensor_type="water_level",
            device_id="WL-8",
            cleared=True,
            location=north(HERE, RADIUS * 10),  # no case anywhere near
        )
    assert caught.value.reason == "unmatched_clearance"


def test_a_human_report_confirms_a_lead() -> None:
    partition = Partition()
    lead = partition.take(1, source=Source.IOT, sensor_type="water_level", device_id="WL-1")
    assert partition.cases[lead.case_id].status is CaseStatus.LEAD
    confirmed = partition.take(2, source=Source.HOTLINE)
    assert [e.type for e in confirmed.events] == [
        "ReportAttached",
        "LeadConfirmed",
        "CaseDispatched",
    ]
    assert partition.cases[lead.case_id].status is CaseStatus.DISPATCHED


def test_a_case_spreading_over_two_communities_goes_up_to_their_street() -> None:
    partition = Partition()
    first = partition.take(1, category="garbage_exposed", location=None)
    assert partition.cases[first.case_id].loop == "micro"
    spread = partition.take(2, category="garbage_exposed", location=None)  # same community first
    assert spread.case_id == first.case_id
    state = partition.cases[first.case_id]
    wider = correlate(
        incident("garbage_exposed", number=3, area="510104001002"),
        None,
        None,
        [state.replace(location_precise=False)],
        None,
        TINY,
        {},
        T0,
    )
    # a different community, placed only by area: not the same evidence, so a new case
    assert wider.case_id != first.case_id


def test_a_graver_report_raises_the_case() -> None:
    partition = Partition()
    first = partition.take(1, category="fire", location=HERE)
    assert partition.cases[first.case_id].loop == "medium"
    graver = partition.take(2, category="fire", source=Source.DUTY, severity=Severity.II)
    assert [e.type for e in graver.events] == ["ReportAttached", "CaseEscalated", "CaseDispatched"]
    assert partition.cases[first.case_id].loop == "big"


def test_a_device_case_takes_only_the_same_kind_of_alarm() -> None:
    partition = Partition()
    first = partition.take(1, source=Source.IOT, sensor_type="water_level", device_id="D-1")
    other = partition.take(
        2,
        category="fire",
        source=Source.IOT,
        sensor_type="smoke",
        device_id="D-1",
        location=north(HERE, RADIUS * 3),
    )
    assert other.reason == "new_case" and other.case_id != first.case_id
