"""A realistic synthetic event stream over a topology: daily hotline rhythm, grid patrols in
working hours, a rainstorm flooding underpasses, a faulty device, a gas leak and exact retries,
with the ground truth (which real incident each event reports) kept apart from the wire."""

from __future__ import annotations

import bisect
import functools
import math
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from cityloop.contracts import EVENT_TYPES, AreaLevel, Source, idempotency_key_for
from cityloop.corpus import shipped_examples
from cityloop.loadtest.streamfile import StreamRecord, event_bytes
from topology import Topology
from topology.geo import distance_m

CHINA_TIME = timezone(timedelta(hours=8))
DEFAULT_START = datetime(2026, 7, 15, 9, 0, tzinfo=CHINA_TIME)
"""A July morning: rainy season, within working hours, so every ingredient shows."""

METRES_PER_DEGREE = 111_320.0

EVENT_SOURCES = {
    Source.HOTLINE: "/12345/chengdu",
    Source.IOT: "/cim/iot",
    Source.GRID: "/grid/app",
    Source.DUTY: "/duty/chengdu",
}

# Hour-of-day weight of hotline calls (local time): quiet at night, peaks mid-morning and
# mid-afternoon, as a citizen hotline's day looks.
HOTLINE_RHYTHM = (
    0.15, 0.10, 0.08, 0.07, 0.08, 0.15, 0.35, 0.70, 1.00, 1.20, 1.25, 1.15,
    0.90, 0.95, 1.10, 1.15, 1.10, 1.00, 0.85, 0.75, 0.65, 0.50, 0.35, 0.22,
)  # fmt: skip

# What citizens call about, and how often (categories missing from a topology are skipped).
HOTLINE_MIX = {
    "garbage_exposed": 10, "noise": 12, "street_vending": 5, "illegal_parking": 8,
    "pothole": 5, "streetlight_out": 5, "manhole_cover_missing": 2, "water_outage": 4,
    "power_outage": 3, "property_dispute": 8, "neighbour_dispute": 5, "price_complaint": 4,
    "food_safety": 3, "air_pollution": 3, "traffic_signal_failure": 2, "tree_fallen": 2,
    "elevator_entrapment": 1, "illegal_advertising": 3, "sewage_overflow": 2,
    "elderly_assistance": 2, "illegal_construction": 2,
}  # fmt: skip
# What grid inspectors find on patrol.
GRID_MIX = {
    "garbage_exposed": 12, "street_vending": 8, "illegal_advertising": 8,
    "construction_waste": 5, "pothole": 5, "streetlight_out": 4, "illegal_parking": 6,
    "manhole_cover_displaced": 2, "open_burning": 1, "structural_danger": 1, "tree_fallen": 2,
}  # fmt: skip
# Background alarms of devices that are not part of the storm.
IOT_MIX = {
    "smoke": 2, "noise_level": 5, "air_quality": 4, "elevator_alarm": 2, "traffic_flow": 3,
    "manhole_tilt": 2, "pipe_pressure": 1, "structural_strain": 1,
}  # fmt: skip
SENSOR_READINGS = {  # threshold, how far past it a real alarm reads, unit
    "water_level": (15.0, 60.0, "cm"),
    "smoke": (0.1, 0.4, "dB/m"),
    "noise_level": (70.0, 20.0, "dB"),
    "air_quality": (150.0, 100.0, "µg/m³"),
    "elevator_alarm": (1.0, 0.0, ""),
    "traffic_flow": (1800.0, 900.0, "veh/h"),
    "manhole_tilt": (10.0, 15.0, "deg"),
    "pipe_pressure": (0.2, 0.15, "MPa"),
    "structural_strain": (800.0, 400.0, "με"),
    "gas_concentration": (20.0, 30.0, "%LEL"),
}
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗"
GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英"

FAULTY_PERIOD_S = 20.0
"""How often the faulty device repeats its alarm."""
RETRY_SHARE = 0.02
"""Share of events that their publisher sends a second time, byte for byte."""
REPEAT_CALL_SHARE = 0.15
"""Share of ordinary hotline calls about something another caller already reported."""
STORM_WEIGHT = 0.6
UNDERPASS_SPACING_M = 1_500.0
"""Flooded underpasses are this far apart, so one correlation radius never spans two."""


@dataclass(frozen=True)
class ScenarioConfig:
    minutes: float
    rate: float
    seed: int = 0
    start: datetime = DEFAULT_START
    storm: bool = True
    faulty_device: bool = True
    gas_leak: bool = True
    retry_share: float = RETRY_SHARE

    @property
    def seconds(self) -> float:
        return self.minutes * 60.0

    @property
    def total_events(self) -> int:
        return max(1, round(self.seconds * self.rate))


@dataclass(frozen=True)
class TruthRow:
    """Which real incident the event with this idempotency key reports (never on the wire)."""

    key: str
    incident: str
    scenario: str
    source: Source

    def to_json(self) -> dict[str, str]:
        return {
            "key": self.key,
            "incident": self.incident,
            "scenario": self.scenario,
            "source": self.source.value,
        }


@dataclass
class GeneratedStream:
    records: list[StreamRecord]
    truth: list[TruthRow]

    def scenario_counts(self) -> dict[str, int]:
        by_key = {row.key: row.scenario for row in self.truth}
        counts: dict[str, int] = {}
        for record in self.records:
            scenario = by_key[(record.key or b"").decode()]
            counts[scenario] = counts.get(scenario, 0) + 1
        return counts


@dataclass(frozen=True)
class Place:
    community: str
    name: str
    lat: float
    lon: float
    grids: tuple[str, ...]
    district: str


@dataclass
class Incident:
    """A real thing happening in the synthetic city, which events then report."""

    incident_id: str
    scenario: str
    category: str
    place: Place
    lat: float
    lon: float
    started_s: float
    devices: list[tuple[str, float, float]] = field(default_factory=list)


@dataclass(order=True)
class _Pending:
    at_s: float
    seq: int
    record: StreamRecord = field(compare=False)
    truth: TruthRow = field(compare=False)


def hotline_rhythm(local: datetime) -> float:
    hour = local.hour + local.minute / 60.0
    low = int(hour) % 24
    high = (low + 1) % 24
    share = hour - int(hour)
    return HOTLINE_RHYTHM[low] * (1 - share) + HOTLINE_RHYTHM[high] * share


def patrolling(local: datetime) -> bool:
    """Grid inspectors walk 08:30–12:00 and 13:30–17:30."""
    minutes = local.hour * 60 + local.minute
    return 510 <= minutes < 720 or 810 <= minutes < 1050


class ScenarioGenerator:
    """Builds one stream; every random choice comes from one seeded generator."""

    def __init__(self, topology: Topology, config: ScenarioConfig):
        self.topology = topology
        self.config = config
        # a simulation, not a secret: reproducibility from the seed is the point
        self.random = random.Random(config.seed)  # noqa: S311
        self.tag = f"{config.seed:x}"
        self.pending: list[_Pending] = []
        self.counters: dict[str, int] = {}
        self.places = self._places()
        if not self.places:
            raise ValueError("the topology has no community with a centroid")
        self.recent_calls: list[Incident] = []
        self.hotline_mix = self._mix(HOTLINE_MIX)
        self.grid_mix = self._mix(GRID_MIX)
        self.iot_mix = {
            sensor: weight
            for sensor, weight in IOT_MIX.items()
            if topology.sensor_type(sensor) is not None
        }
        self.storm_window = self._storm_window()
        self.storm_incidents = self._underpasses() if self.storm_window else []
        if not self.storm_incidents:
            self.storm_window = None

    # --- the city ----------------------------------------------------------------------------

    def _places(self) -> list[Place]:
        places = []
        for area in self.topology.areas.values():
            if area.level is not AreaLevel.COMMUNITY or area.centroid is None:
                continue
            grids = tuple(
                child
                for child in self.topology.children(area.code)
                if self.topology.level_of(child) is AreaLevel.GRID
            )
            district = self.topology.ancestor_at(area.code, AreaLevel.DISTRICT) or area.code
            places.append(
                Place(area.code, area.name, area.centroid.lat, area.centroid.lon, grids, district)
            )
        return sorted(places, key=lambda place: place.community)

    def _mix(self, weights: dict[str, int]) -> dict[str, int]:
        mix = {code: w for code, w in weights.items() if self.topology.category(code) is not None}
        if not mix:  # a small topology: every category with words a caller would use
            mix = {code: 1 for code, spec in self.topology.categories.items() if spec.keywords}
        return mix

    def _pick(self, mix: dict[str, int]) -> str:
        return self.random.choices(list(mix), weights=list(mix.values()))[0]

    def _near(self, lat: float, lon: float, within_m: float) -> tuple[float, float]:
        angle = self.random.uniform(0, 2 * math.pi)
        radius = within_m * math.sqrt(self.random.random())
        dlat = radius * math.sin(angle) / METRES_PER_DEGREE
        dlon = radius * math.cos(angle) / (METRES_PER_DEGREE * math.cos(math.radians(lat)))
        return round(lat + dlat, 6), round(lon + dlon, 6)

    def _next(self, kind: str) -> int:
        self.counters[kind] = self.counters.get(kind, 0) + 1
        return self.counters[kind]

    def _incident(self, scenario: str, category: str, place: Place, at_s: float) -> Incident:
        lat, lon = self._near(place.lat, place.lon, 40.0)
        number = self._next("incident")
        return Incident(f"INC-{self.tag}-{number:07d}", scenario, category, place, lat, lon, at_s)

    # --- scenario timing -----------------------------------------------------------------------

    def _storm_window(self) -> tuple[float, float] | None:
        if not self.config.storm or self.topology.sensor_type("water_level") is None:
            return None
        seconds = self.config.seconds
        start = seconds * 0.25
        return start, start + min(3600.0, seconds * 0.5)

    def _underpasses(self) -> list[Incident]:
        by_district: dict[str, list[Place]] = {}
        for place in self.places:
            by_district.setdefault(place.district, []).append(place)
        # a central district with many communities floods most visibly
        districts = sorted(by_district, key=lambda code: (-len(by_district[code]), code))[:5]
        district = self.random.choice(districts)
        candidates = list(by_district[district])
        self.random.shuffle(candidates)
        chosen: list[Place] = []
        for place in candidates:
            if all(
                distance_m(place.lat, place.lon, other.lat, other.lon) >= UNDERPASS_SPACING_M
                for other in chosen
            ):
                chosen.append(place)
            if len(chosen) == 5:
                break
        window = self.storm_window
        if window is None:
            return []
        incidents = []
        for place in chosen:
            incident = self._incident("storm_underpass", "waterlogging", place, 0.0)
            incident.started_s = window[0]
            for _ in range(2):
                device = f"WL-{self.tag}-{self._next('device'):05d}"
                incident.devices.append((device, *self._near(incident.lat, incident.lon, 60.0)))
            incidents.append(incident)
        return incidents

    # --- the wire ------------------------------------------------------------------------------

    def _local(self, at_s: float) -> datetime:
        return self.config.start.astimezone(CHINA_TIME) + timedelta(seconds=at_s)

    def _emit(
        self, at_s: float, source: Source, event_id: str, data: dict[str, Any], incident: Incident
    ) -> StreamRecord:
        when = self._local(at_s)
        event = {
            "specversion": "1.0",
            "id": event_id,
            "source": EVENT_SOURCES[source],
            "type": EVENT_TYPES[source],
            "time": when.isoformat(timespec="milliseconds"),
            "data": data,
        }
        key = idempotency_key_for(EVENT_SOURCES[source], event_id)
        record = StreamRecord(
            value=event_bytes(event),
            key=key.encode(),
            timestamp_ms=int(when.timestamp() * 1000),
            source=source,
            event=event,
        )
        truth = TruthRow(key, incident.incident_id, incident.scenario, source)
        self.pending.append(_Pending(at_s, len(self.pending), record, truth))
        return record

    def _caller(self) -> tuple[str, str]:
        name = self.random.choice(SURNAMES) + "".join(self.random.choices(GIVEN, k=2))
        return name, f"1{self.random.randint(3, 9)}{self.random.randint(0, 999_999_999):09d}"

    def _citizen_words(self, incident: Incident) -> tuple[str, str]:
        """What a caller says about the incident: a message of its category from the corpus's
        held-out part (text the classifier never trained on), or, for a category the corpus
        lacks, a plain sentence with the category's name."""
        said = citizen_words().get(incident.category)
        if said:
            return self.random.choice(said)
        spec = self.topology.category(incident.category)
        name = spec.name if spec else incident.category
        return f"反映{name}", f"{incident.place.name}附近有{name}的情况，请尽快处理"

    def hotline_call(
        self, at_s: float, incident: Incident, title: str | None = None, text: str | None = None
    ) -> None:
        said_title, said_text = (title, text) if title and text else self._citizen_words(incident)
        name, phone = self._caller()
        when = self._local(at_s).isoformat(timespec="seconds")
        number = self._next("hotline")
        data: dict[str, Any] = {
            "order_id": f"WO-{self.tag}-{number:07d}",
            "received_at": when,
            "channel": self.random.choice(("phone", "phone", "phone", "app", "wechat")),
            "title": said_title[:200] or "反映问题",
            "text": said_text,
            "caller_name": name,
            "caller_phone": phone,
            "urgency": "urgent" if incident.scenario != "background" else "normal",
        }
        if self.random.random() < 0.6:
            data["category_code"] = incident.category  # else the words classify it
        placing = self.random.random()
        if placing < 0.7:
            data["area_code"] = incident.place.community
        if placing >= 0.5:
            lat, lon = self._near(incident.lat, incident.lon, 25.0)
            data["location"] = {"lat": lat, "lon": lon}
        data["address"] = f"{incident.place.name}"
        self._emit(at_s, Source.HOTLINE, data["order_id"], data, incident)

    def grid_report(self, at_s: float, incident: Incident, text: str | None = None) -> None:
        spec = self.topology.category(incident.category)
        word = spec.keywords[0] if spec and spec.keywords else incident.category
        number = self._next("grid")
        report_id = f"GR-{self.tag}-{number:07d}"
        lat, lon = self._near(incident.lat, incident.lon, 20.0)
        grid = self.random.choice(incident.place.grids) if incident.place.grids else None
        data = {
            "report_id": report_id,
            "inspector_id": f"GI-{incident.place.community[-6:]}",
            "grid_id": grid or incident.place.community,
            "category_code": incident.category,
            "text": text or f"巡查发现{incident.place.name}{word}",
            "photo_refs": [f"oss://grid/{report_id}/1.jpg"],
            "location": {"lat": lat, "lon": lon},
            "reported_at": self._local(at_s).isoformat(timespec="seconds"),
        }
        self._emit(at_s, Source.GRID, report_id, data, incident)

    def alarm(
        self,
        at_s: float,
        incident: Incident,
        sensor: str,
        device: tuple[str, float, float],
        severity: float,
        cleared: bool = False,
    ) -> None:
        threshold, excess, unit = SENSOR_READINGS.get(sensor, (1.0, 1.0, ""))
        reading = threshold * 0.5 if cleared else threshold + excess * severity
        number = self._next("alarm")
        alarm_id = f"AL-{self.tag}-{number:07d}"
        data = {
            "alarm_id": alarm_id,
            "device_id": device[0],
            "sensor_type": sensor,
            "reading": round(reading + self.random.uniform(0, excess * 0.05), 3),
            "threshold": threshold,
            "unit": unit,
            "location": {"lat": device[1], "lon": device[2]},
            "area_code": incident.place.community,
            "raised_at": self._local(at_s).isoformat(timespec="seconds"),
            "cleared": cleared,
        }
        self._emit(at_s, Source.IOT, alarm_id, data, incident)

    def duty_report(self, at_s: float, incident: Incident, severity: str, summary: str) -> None:
        number = self._next("duty")
        report_id = f"DR-{self.tag}-{number:05d}"
        data = {
            "report_id": report_id,
            "duty_office": incident.place.district,
            "severity": severity,
            "category_code": incident.category,
            "casualties": 0,
            "affected_areas": [incident.place.community],
            "location": {"lat": incident.lat, "lon": incident.lon},
            "summary": summary,
            "reported_at": self._local(at_s).isoformat(timespec="seconds"),
        }
        self._emit(at_s, Source.DUTY, report_id, data, incident)

    # --- the ingredients -----------------------------------------------------------------------

    def background_call(self, at_s: float) -> None:
        window_open = [
            incident for incident in self.recent_calls[-200:] if at_s - incident.started_s < 1800
        ]
        if window_open and self.random.random() < REPEAT_CALL_SHARE:
            self.hotline_call(at_s, self.random.choice(window_open))
            return
        incident = self._incident(
            "background", self._pick(self.hotline_mix), self.random.choice(self.places), at_s
        )
        self.recent_calls.append(incident)
        self.hotline_call(at_s, incident)

    def patrol_finding(self, at_s: float) -> None:
        place = self.random.choice(self.places)
        self.grid_report(at_s, self._incident("background", self._pick(self.grid_mix), place, at_s))

    def background_alarm(self, at_s: float) -> None:
        if not self.iot_mix:
            self.background_call(at_s)
            return
        sensor = self._pick(self.iot_mix)
        spec = self.topology.sensor_type(sensor)
        if spec is None:
            return
        place = self.random.choice(self.places)
        incident = self._incident("background", spec.category_code, place, at_s)
        device = (f"DV-{self.tag}-{self._next('device'):05d}", incident.lat, incident.lon)
        self.alarm(at_s, incident, sensor, device, self.random.random())

    def storm_event(self, at_s: float) -> None:
        if self.storm_window is None:
            return
        start, end = self.storm_window
        progress = (at_s - start) / max(end - start, 1.0)
        # a few underpasses flood worst and draw most reports
        weights = [1.0 / (rank + 1) for rank in range(len(self.storm_incidents))]
        incident = self.random.choices(self.storm_incidents, weights=weights)[0]
        roll = self.random.random()
        if roll < 0.45:
            device = self.random.choice(incident.devices)
            self.alarm(at_s, incident, "water_level", device, min(1.0, 0.2 + progress))
        elif roll < 0.8:
            self.hotline_call(
                at_s,
                incident,
                title="下穿隧道积水",
                text=f"{incident.place.name}下穿隧道积水很深，有车辆熄火",
            )
        else:
            self.grid_report(at_s, incident, text=f"{incident.place.name}下穿隧道积水，已设置警示")

    def storm_clearing(self) -> None:
        if self.storm_window is None:
            return
        for incident in self.storm_incidents:
            for device in incident.devices:
                at_s = min(self.storm_window[1] + self.random.uniform(0, 120), self.config.seconds)
                self.alarm(at_s, incident, "water_level", device, 0.0, cleared=True)

    def faulty_device(self) -> int:
        sensor = next(
            (s for s in ("manhole_tilt", "noise_level", "smoke") if self.topology.sensor_type(s)),
            None,
        )
        spec = self.topology.sensor_type(sensor) if sensor else None
        if spec is None:
            return 0
        sensor = spec.sensor_type
        place = self.random.choice(self.places)
        incident = self._incident("faulty_device", spec.category_code, place, 0.0)
        device = (f"FD-{self.tag}-{self._next('device'):05d}", incident.lat, incident.lon)
        count = 0
        at_s = self.random.uniform(0, FAULTY_PERIOD_S)
        while at_s < self.config.seconds:
            self.alarm(at_s, incident, sensor, device, 0.3)  # the same stuck reading, again
            count += 1
            at_s += FAULTY_PERIOD_S + self.random.uniform(-1.0, 1.0)
        return count

    def gas_leak(self) -> int:
        if self.topology.category("gas_leak") is None:
            return 0
        at_s = self.config.seconds * 0.6
        storm_district = self.storm_incidents[0].place.district if self.storm_incidents else None
        places = [p for p in self.places if p.district != storm_district] or self.places
        incident = self._incident("gas_leak", "gas_leak", self.random.choice(places), at_s)
        count = 0
        if self.topology.sensor_type("gas_concentration") is not None:
            device = (f"GC-{self.tag}-{self._next('device'):05d}", incident.lat, incident.lon)
            self.alarm(max(0.0, at_s - 40), incident, "gas_concentration", device, 0.8)
            count += 1
        self.duty_report(
            at_s, incident, "II", f"{incident.place.name}燃气管道泄漏，已疏散周边群众，请求处置"
        )
        count += 1
        for _ in range(3):
            call_at = min(at_s + self.random.uniform(20, 600), self.config.seconds)
            self.hotline_call(call_at, incident, title="燃气泄漏", text="楼下闻到很浓的燃气味")
            count += 1
        return count

    def retries(self) -> None:
        """Publishers that time out waiting for an acknowledgement send the same bytes again."""
        originals = list(self.pending)
        count = round(len(originals) * self.config.retry_share)
        for original in self.random.sample(originals, min(count, len(originals))):
            at_s = min(original.at_s + self.random.uniform(0.5, 30.0), self.config.seconds)
            when = self._local(at_s)
            record = StreamRecord(
                value=original.record.value,
                key=original.record.key,
                timestamp_ms=int(when.timestamp() * 1000),
                source=original.record.source,
                event=original.record.event,
            )
            self.pending.append(_Pending(at_s, len(self.pending), record, original.truth))

    # --- the whole stream ----------------------------------------------------------------------

    def intensities(self, at_s: float) -> list[tuple[Callable[[float], None], float]]:
        local = self._local(at_s)
        parts: list[tuple[Callable[[float], None], float]] = [
            (self.background_call, 0.55 * hotline_rhythm(local)),
            (self.patrol_finding, 0.20 if patrolling(local) else 0.0),
            (self.background_alarm, 0.08),
        ]
        if self.storm_window and self.storm_window[0] <= at_s < self.storm_window[1]:
            parts.append((self.storm_event, STORM_WEIGHT))
        return parts

    def build(self) -> GeneratedStream:
        total = self.config.total_events
        scheduled = 0
        if self.config.faulty_device:
            scheduled += self.faulty_device()
        if self.config.gas_leak:
            scheduled += self.gas_leak()
        if self.storm_window:
            self.storm_clearing()
            scheduled += sum(len(i.devices) for i in self.storm_incidents)
        retries = round(total * self.config.retry_share / (1 + self.config.retry_share))
        random_events = max(0, total - scheduled - retries)
        for at_s, ingredient in self._timeline(random_events):
            ingredient(at_s)
        self.retries()
        self.pending.sort()
        # one truth row per idempotency key (an exact retry reports what its original did)
        truth = list({p.truth.key: p.truth for p in self.pending}.values())
        return GeneratedStream([p.record for p in self.pending], truth)

    def _timeline(self, count: int) -> list[tuple[float, Callable[[float], None]]]:
        """`count` moments spread by the ingredients' intensities, second by second, each with
        the ingredient that fills it, in time order."""
        seconds = max(1, math.ceil(self.config.seconds))
        per_second = [self.intensities(float(s)) for s in range(seconds)]
        totals = [sum(weight for _, weight in parts) for parts in per_second]
        cumulative: list[float] = []
        running = 0.0
        for value in totals:
            running += value
            cumulative.append(running)
        if running <= 0:
            return []
        moments = []
        for _ in range(count):
            second = bisect.bisect_right(cumulative, self.random.random() * running)
            second = min(second, seconds - 1)
            moments.append(second + self.random.random())
        moments.sort()
        timeline = []
        for at_s in moments:
            if at_s >= self.config.seconds:
                at_s = self.config.seconds * self.random.random()
            parts = [(fn, w) for fn, w in per_second[int(at_s)] if w > 0]
            ingredient = self.random.choices(
                [fn for fn, _ in parts], weights=[w for _, w in parts]
            )[0]
            timeline.append((at_s, ingredient))
        timeline.sort(key=lambda item: item[0])
        return timeline


@functools.lru_cache(maxsize=1)
def citizen_words() -> dict[str, list[tuple[str, str]]]:
    """The corpus's held-out messages by category: (title, text)."""
    words: dict[str, list[tuple[str, str]]] = {}
    for example in shipped_examples(held_out=True):
        words.setdefault(example.category, []).append((example.title, example.text))
    return words


def generate(topology: Topology, config: ScenarioConfig) -> GeneratedStream:
    """The whole stream and its ground truth; the same config and topology give the same bytes."""
    return ScenarioGenerator(topology, config).build()


def truth_rows(rows: Sequence[TruthRow]) -> list[dict[str, str]]:
    return [row.to_json() for row in rows]
