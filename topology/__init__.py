"""The responsibility graph: areas, departments, centres, categories, and routing over them."""

from topology.errors import TopologyError, TopologyValidationError, UnroutableError
from topology.graph import Topology
from topology.loader import (
    default_topology_path,
    load_topology,
    load_topology_text,
    parse_document,
    tiny_topology_path,
)
from topology.model import (
    AreaSpec,
    CategorySpec,
    CentreSpec,
    CorrelationSpec,
    DepartmentSpec,
    SensorTypeSpec,
    SlaSpec,
    SlaStep,
    TopologyDocument,
)
from topology.routing import escalation_target, route

__all__ = [
    "AreaSpec",
    "CategorySpec",
    "CentreSpec",
    "CorrelationSpec",
    "DepartmentSpec",
    "SensorTypeSpec",
    "SlaSpec",
    "SlaStep",
    "Topology",
    "TopologyDocument",
    "TopologyError",
    "TopologyValidationError",
    "UnroutableError",
    "default_topology_path",
    "escalation_target",
    "load_topology",
    "load_topology_text",
    "parse_document",
    "route",
    "tiny_topology_path",
]
