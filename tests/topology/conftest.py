"""Shared topologies for the topology tests: each is compiled once per session."""

from __future__ import annotations

import pytest

from topology import Topology, load_topology, tiny_topology_path


@pytest.fixture(scope="session")
def tiny() -> Topology:
    return load_topology(tiny_topology_path())


@pytest.fixture(scope="session")
def chengdu() -> Topology:
    return load_topology()
