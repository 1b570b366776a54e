"""Reading a topology file (or text) into a compiled, validated Topology."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from importlib.resources import files
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from topology.errors import TopologyValidationError
from topology.graph import Topology
from topology.model import TopologyDocument

# libyaml parses the Chengdu file in ~0.3 s, but PyYAML's Python-side constructor takes
# ~2 s more; building plain dicts and lists straight from the event stream takes ~0.3 s.
# Anchors, aliases, explicit tags and merge keys are rare in topology files: for those the
# full safe loader runs instead.
_YAML_LOADER: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_RESOLVER = yaml.resolver.Resolver()
_CONSTRUCTOR = yaml.constructor.SafeConstructor()
_PLAIN_CONSTRUCTORS: dict[str, Callable[[yaml.ScalarNode], Any]] = {
    "tag:yaml.org,2002:null": _CONSTRUCTOR.construct_yaml_null,
    "tag:yaml.org,2002:bool": _CONSTRUCTOR.construct_yaml_bool,
    "tag:yaml.org,2002:int": _CONSTRUCTOR.construct_yaml_int,
    "tag:yaml.org,2002:float": _CONSTRUCTOR.construct_yaml_float,
    "tag:yaml.org,2002:timestamp": _CONSTRUCTOR.construct_yaml_timestamp,
}


class _NeedsFullLoader(Exception):
    """The text uses a YAML feature the fast path does not build."""


class _DuplicateKey(Exception):
    def __init__(self, key: Any, mark: Any) -> None:
        super().__init__(f"duplicate key {key!r} at {mark}".replace("\n", " "))


def _plain_scalar(value: str) -> Any:
    tag = _RESOLVER.resolve(yaml.ScalarNode, value, (True, False))  # type: ignore[no-untyped-call]
    construct = _PLAIN_CONSTRUCTORS.get(tag)
    return value if construct is None else construct(yaml.ScalarNode(tag, value))


def _fast_yaml(text: str | bytes) -> Any:
    """The same value as a safe load, built from parser events; duplicate keys refused."""
    events = yaml.events
    stack: list[list[Any]] = []  # [container, pending key, key seen]
    root: Any = None
    for event in yaml.parse(text, Loader=_YAML_LOADER):
        value: Any
        if isinstance(event, events.ScalarEvent):
            if event.anchor is not None or event.tag not in (None, "!"):
                raise _NeedsFullLoader
            value = _plain_scalar(event.value) if event.implicit[0] else event.value
        elif isinstance(event, events.CollectionStartEvent):
            if event.anchor is not None or (event.tag is not None and not event.implicit):
                raise _NeedsFullLoader
            stack.append([{} if isinstance(event, events.MappingStartEvent) else [], None, False])
            continue
        elif isinstance(event, events.CollectionEndEvent):
            value = stack.pop()[0]
        elif isinstance(event, events.AliasEvent):
            raise _NeedsFullLoader
        else:
            continue
        if not stack:
            root = value
            continue
        frame = stack[-1]
        container = frame[0]
        if type(container) is list:
            container.append(value)
        elif frame[2]:
            if frame[1] in container:
                raise _DuplicateKey(frame[1], event.start_mark)
            container[frame[1]] = value
            frame[2] = False
        else:
            if value == "<<" or isinstance(value, dict | list):
                raise _NeedsFullLoader
            frame[1] = value
            frame[2] = True
    return root


def default_topology_path() -> Path:
    """The shipped Chengdu topology."""
    return Path(str(files("topology") / "data" / "chengdu.yaml"))


def tiny_topology_path() -> Path:
    """The two-district topology the tests route against."""
    return Path(str(files("topology") / "data" / "tiny.yaml"))


def _schema_problems(error: ValidationError) -> list[str]:
    problems = []
    for item in error.errors():
        where = ".".join(str(part) for part in item["loc"])
        problems.append(f"{where or 'document'}: {item['msg']}")
    return problems


def parse_document(text: str | bytes, source: str = "topology") -> TopologyDocument:
    """The validated schema of a topology text; raises TopologyValidationError."""
    try:
        try:
            raw = _fast_yaml(text)
        except _NeedsFullLoader:
            raw = yaml.load(text, Loader=_YAML_LOADER)  # noqa: S506 - a safe loader
    except (yaml.YAMLError, _DuplicateKey) as error:
        message = " ".join(str(error).split())
        raise TopologyValidationError([f"not valid YAML: {message}"], source) from None
    if not isinstance(raw, dict):
        raise TopologyValidationError(["the file must be a YAML mapping"], source)
    try:
        return TopologyDocument.model_validate(raw)
    except ValidationError as error:
        raise TopologyValidationError(_schema_problems(error), source) from None


def load_topology_text(text: str | bytes, source: str = "topology") -> Topology:
    """Compile a topology from YAML text (e.g. a version received on a topic)."""
    data = text.encode() if isinstance(text, str) else text
    digest = hashlib.sha256(data).hexdigest()[:16]
    return Topology.compile(parse_document(text, source), source=source, digest=digest)


def load_topology(path: str | Path | None = None) -> Topology:
    """Compile the topology at `path` (the Chengdu default when None)."""
    file = Path(path) if path is not None else default_topology_path()
    try:
        data = file.read_bytes()
    except OSError as error:
        problem = f"cannot read {file}: {error.strerror}"
        raise TopologyValidationError([problem], str(file)) from None
    return load_topology_text(data, source=str(file))
