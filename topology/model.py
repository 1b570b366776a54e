"""The topology file's schema: areas, departments, centres, classes, categories, sensor types."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from cityloop.contracts import AreaLevel, GeoPoint, Loop, Mode, Severity

AREA_CODE_PATTERN = r"^[0-9]{6}([0-9]{3}([0-9]{3}([0-9]{3})?)?)?$"
KIND_PATTERN = r"^[a-z][a-z0-9_]{1,40}$"

# The loops bottom-up and the level each one acts at; a grid is a patch inside a community,
# so cases from a grid are handled by its community's micro loop.
LOOP_ORDER: tuple[Loop, ...] = (Loop.MICRO, Loop.SMALL, Loop.MEDIUM, Loop.BIG)
LEVEL_OF_LOOP: dict[Loop, AreaLevel] = {
    Loop.MICRO: AreaLevel.COMMUNITY,
    Loop.SMALL: AreaLevel.STREET,
    Loop.MEDIUM: AreaLevel.DISTRICT,
    Loop.BIG: AreaLevel.CITY,
}
LOOP_OF_LEVEL: dict[AreaLevel, Loop] = {level: loop for loop, level in LEVEL_OF_LOOP.items()}
# Rank counts up from the bottom; a parent's rank is always its child's rank + 1.
LEVEL_RANK: dict[AreaLevel, int] = {
    AreaLevel.GRID: -1,
    AreaLevel.COMMUNITY: 0,
    AreaLevel.STREET: 1,
    AreaLevel.DISTRICT: 2,
    AreaLevel.CITY: 3,
}
LOOP_RANK: dict[Loop, int] = {loop: rank for rank, loop in enumerate(LOOP_ORDER)}
CODE_LENGTH: dict[AreaLevel, int] = {
    AreaLevel.CITY: 6,
    AreaLevel.DISTRICT: 6,
    AreaLevel.STREET: 9,
    AreaLevel.COMMUNITY: 12,
    AreaLevel.GRID: 15,
}
# From the least to the most severe, so that a floor set for a grade also binds graver ones.
SEVERITY_ORDER: tuple[Severity, ...] = (Severity.IV, Severity.III, Severity.II, Severity.I)
# The national grading of emergencies (国家突发事件分级): grades I-III (特别重大, 重大, 较大)
# are handled at least by the city, grade IV (一般) at least by the district. It is a floor
# under every category of every file; a category's own `severity_floor` can only raise it.
NATIONAL_SEVERITY_FLOOR: dict[Severity, Loop] = {
    Severity.I: Loop.BIG,
    Severity.II: Loop.BIG,
    Severity.III: Loop.BIG,
    Severity.IV: Loop.MEDIUM,
}


def _code_text(value: Any) -> Any:
    # Unquoted codes arrive from YAML as integers; Chinese codes never start with 0, so the
    # decimal text is the code. Files for codes with a leading zero must quote them.
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return value


def _point(value: Any) -> Any:
    # `[lat, lon]` is accepted beside `{lat: .., lon: ..}` to keep large files readable.
    if isinstance(value, list | tuple) and len(value) == 2:
        return {"lat": value[0], "lon": value[1]}
    return value


def _loop_or_level(value: Any) -> Any:
    # A file may name the level ("street") or the loop ("small"); both mean the same floor.
    if isinstance(value, str):
        try:
            return LOOP_OF_LEVEL[AreaLevel(value)]
        except (ValueError, KeyError):
            return value
    return value


Code = Annotated[str, BeforeValidator(_code_text), Field(pattern=AREA_CODE_PATTERN)]
Kind = Annotated[str, Field(pattern=KIND_PATTERN)]
Point = Annotated[GeoPoint, BeforeValidator(_point)]
LoopFloor = Annotated[Loop, BeforeValidator(_loop_or_level)]
Name = Annotated[str, Field(min_length=1, max_length=200)]
Identifier = Annotated[
    str, BeforeValidator(_code_text), Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:\-]{0,120}$")
]


class Spec(BaseModel):
    """Base of the file's models: immutable, strict about unknown fields."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class AreaSpec(Spec):
    """One node of the administrative tree."""

    code: Code
    name: Name
    level: AreaLevel
    parent: Code | None = None
    centroid: Point | None = None
    polygon: Annotated[list[Point], Field(min_length=3)] | None = None


class DepartmentSpec(Spec):
    """A functional department holding jurisdiction over one area (and everything below it)."""

    id: Identifier
    name: Name
    kind: Kind
    area: Code


class CentreSpec(Spec):
    """An operations centre (运行中心) at a city, district or street area."""

    id: Identifier
    name: Name
    area: Code


class SlaStep(Spec):
    """Minutes allowed to accept (签收) and to resolve (办结)."""

    accept_minutes: Annotated[int, Field(gt=0, le=525_600)]
    resolve_minutes: Annotated[int, Field(gt=0, le=525_600)]

    @model_validator(mode="after")
    def _accept_before_resolve(self) -> SlaStep:
        if self.accept_minutes > self.resolve_minutes:
            raise ValueError("accept_minutes must not exceed resolve_minutes")
        return self


class SlaSpec(SlaStep):
    """Deadlines of a category; a loop or emergency mode may tighten or loosen them."""

    per_loop: dict[Loop, SlaStep] = {}
    emergency: SlaStep | None = None

    def for_loop(self, loop: Loop, mode: Mode = Mode.NORMAL) -> SlaStep:
        """The deadlines at `loop`; in emergency mode the shorter of each step applies."""
        step: SlaStep = self.per_loop.get(loop, self)
        if mode is Mode.EMERGENCY and self.emergency is not None:
            return SlaStep(
                accept_minutes=min(step.accept_minutes, self.emergency.accept_minutes),
                resolve_minutes=min(step.resolve_minutes, self.emergency.resolve_minutes),
            )
        if step is self:
            return SlaStep(accept_minutes=self.accept_minutes, resolve_minutes=self.resolve_minutes)
        return step


class CorrelationSpec(Spec):
    """How near in space and time two reports must be to be the same matter (dedup)."""

    radius_m: Annotated[float, Field(gt=0, le=100_000)]
    window_minutes: Annotated[int, Field(gt=0, le=43_200)]


class CategoryClassSpec(Spec):
    """A top-level class of the catalogue (e.g. 劳动和社会保障); categories sit under one."""

    code: Kind
    name: Name
    description: str = ""


class CategorySpec(Spec):
    """A category of matter and who is responsible for it (权责清单)."""

    code: Kind
    name: Name
    class_code: Kind | None = None
    family: Kind
    lead_kind: Kind
    co_handler_kinds: list[Kind] = []
    lowest_level: LoopFloor
    severity_floor: dict[Severity, LoopFloor] = {}
    emergency_floor: LoopFloor | None = None
    sla: SlaSpec
    correlation: CorrelationSpec
    keywords: list[Annotated[str, Field(min_length=1, max_length=50)]] = []
    description: str = ""

    @model_validator(mode="after")
    def _distinct_kinds(self) -> CategorySpec:
        kinds = [self.lead_kind, *self.co_handler_kinds]
        if len(set(kinds)) != len(kinds):
            raise ValueError("lead_kind and co_handler_kinds must all be different")
        return self

    def floor_for(self, severity: Severity | None, mode: Mode = Mode.NORMAL) -> Loop:
        """The lowest loop allowed for this severity and mode (floors only ever raise it):
        the highest of the lowest level, the national floor of the grade, the category's own
        floor for the grade (or a milder one) and, in emergency mode, its emergency floor."""
        floor = LOOP_RANK[self.lowest_level]
        if severity is not None:
            floor = max(floor, LOOP_RANK[NATIONAL_SEVERITY_FLOOR[severity]])
            rank = SEVERITY_ORDER.index(severity)
            for graded, loop in self.severity_floor.items():
                if SEVERITY_ORDER.index(graded) <= rank:
                    floor = max(floor, LOOP_RANK[loop])
        if mode is Mode.EMERGENCY and self.emergency_floor is not None:
            floor = max(floor, LOOP_RANK[self.emergency_floor])
        return LOOP_ORDER[floor]


class SensorTypeSpec(Spec):
    """An IoT sensor type and the category its alarms become."""

    sensor_type: Kind
    category_code: Kind
    needs_verification: bool
    name: str = ""
    unit: str = ""


class TopologyDocument(Spec):
    """A whole topology file."""

    version: Annotated[str, Field(min_length=1, max_length=100)]
    name: Name
    description: str = ""
    areas: list[AreaSpec] = Field(min_length=1)
    departments: list[DepartmentSpec] = []
    centres: list[CentreSpec] = []
    classes: list[CategoryClassSpec] = []
    categories: list[CategorySpec] = []
    sensor_types: list[SensorTypeSpec] = []
