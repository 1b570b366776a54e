"""Structural checks on a topology document: one readable line per problem found."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from cityloop.contracts import AreaLevel
from topology.model import CODE_LENGTH, LEVEL_RANK, TopologyDocument

CENTRE_LEVELS = frozenset({AreaLevel.CITY, AreaLevel.DISTRICT, AreaLevel.STREET})


def _duplicates(what: str, keys: Iterable[str]) -> list[str]:
    return [
        f"duplicate {what} {key} ({count} times)"
        for key, count in Counter(keys).items()
        if count > 1
    ]


def _cycles(document: TopologyDocument) -> list[list[str]]:
    """Each cycle of parent links once. Every area has at most one parent, so one walk
    per area that stops at anything already walked finds them all in linear time."""
    parent_of = {area.code: area.parent for area in document.areas}
    finished: set[str] = set()
    cycles: list[list[str]] = []
    for code in parent_of:
        path: dict[str, None] = {}
        current: str | None = code
        while current is not None and current not in finished and current not in path:
            path[current] = None
            current = parent_of.get(current)
        if current is not None and current in path:
            walked = list(path)
            cycles.append(walked[walked.index(current) :])
        finished.update(path)
    return cycles


def structural_problems(document: TopologyDocument) -> list[str]:
    """Everything wrong with the tree, the references and the catalogue, in file order."""
    problems: list[str] = []
    problems += _duplicates("area code", (a.code for a in document.areas))
    problems += _duplicates("department id", (d.id for d in document.departments))
    problems += _duplicates("centre id", (c.id for c in document.centres))
    problems += _duplicates("class code", (c.code for c in document.classes))
    problems += _duplicates("category code", (c.code for c in document.categories))
    problems += _duplicates("sensor type", (s.sensor_type for s in document.sensor_types))

    areas = {area.code: area for area in document.areas}
    cities = [area for area in document.areas if area.level is AreaLevel.CITY]
    if len(cities) != 1:
        problems.append(f"there must be exactly one city area, found {len(cities)}")

    for cycle in _cycles(document):
        problems.append("cycle in parents: " + " -> ".join([*cycle, cycle[0]]))

    for area in document.areas:
        label = f"area {area.code} ({area.name})"
        if len(area.code) != CODE_LENGTH[area.level]:
            problems.append(
                f"{label}: a {area.level} code has {CODE_LENGTH[area.level]} digits, "
                f"not {len(area.code)}"
            )
        if area.level is AreaLevel.CITY:
            if area.parent is not None:
                problems.append(f"{label}: the city has no parent, found {area.parent}")
            continue
        if area.parent is None:
            problems.append(f"{label}: a {area.level} needs a parent; it cannot reach the city")
            continue
        parent = areas.get(area.parent)
        if parent is None:
            problems.append(f"{label}: unknown parent {area.parent}; it cannot reach the city")
            continue
        if LEVEL_RANK[parent.level] != LEVEL_RANK[area.level] + 1:
            problems.append(
                f"{label}: a {area.level} cannot sit under a {parent.level} ({parent.code})"
            )
        if area.level is not AreaLevel.DISTRICT and not area.code.startswith(parent.code):
            problems.append(f"{label}: code does not start with its parent's code {parent.code}")

    department_at: Counter[tuple[str, str]] = Counter()
    for department in document.departments:
        label = f"department {department.id}"
        holder = areas.get(department.area)
        if holder is None:
            problems.append(f"{label}: unknown area {department.area}")
            continue
        if holder.level is AreaLevel.GRID:
            problems.append(f"{label}: a grid ({holder.code}) holds no jurisdiction")
        department_at[(department.kind, department.area)] += 1
    problems += [
        f"area {area}: {count} departments of kind {kind}; routing needs at most one"
        for (kind, area), count in department_at.items()
        if count > 1
    ]

    centre_at: Counter[str] = Counter()
    for centre in document.centres:
        holder = areas.get(centre.area)
        if holder is None:
            problems.append(f"centre {centre.id}: unknown area {centre.area}")
            continue
        if holder.level not in CENTRE_LEVELS:
            problems.append(
                f"centre {centre.id}: centres sit at city, district or street level, "
                f"not at {holder.level} {holder.code}"
            )
        centre_at[centre.area] += 1
    problems += [
        f"area {area}: {count} operations centres; at most one per area"
        for area, count in centre_at.items()
        if count > 1
    ]
    if len(cities) == 1 and centre_at[cities[0].code] == 0:
        problems.append(f"area {cities[0].code}: the city has no operations centre")

    kinds = {department.kind for department in document.departments}
    class_codes = {catalogue_class.code for catalogue_class in document.classes}
    for category in document.categories:
        if category.class_code is None:
            # A file without classes is a flat catalogue; one with classes is a tree throughout.
            if class_codes:
                problems.append(
                    f"category {category.code}: no class_code; "
                    "every category needs one when the file declares classes"
                )
        elif category.class_code not in class_codes:
            problems.append(f"category {category.code}: unknown class {category.class_code}")
        for kind in (category.lead_kind, *category.co_handler_kinds):
            if kind not in kinds:
                problems.append(f"category {category.code}: no department of kind {kind} anywhere")
    category_codes = {category.code for category in document.categories}
    for sensor in document.sensor_types:
        if sensor.category_code not in category_codes:
            problems.append(
                f"sensor type {sensor.sensor_type}: unknown category {sensor.category_code}"
            )
    return problems
