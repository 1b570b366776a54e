"""`cityloop topology`: check a topology file and ask it routing questions from a shell."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from cityloop.contracts import Assignment, Mode, Severity
from topology import (
    Topology,
    TopologyValidationError,
    UnroutableError,
    load_topology,
    route,
)

app = typer.Typer(
    name="topology",
    help="Check topology files and route cases against them.",
    no_args_is_help=True,
    add_completion=False,
)

TopologyFile = Annotated[
    Path | None,
    typer.Option(
        "--topology",
        "-t",
        help="Topology YAML file (default: the shipped Chengdu topology).",
        dir_okay=False,
    ),
]


def _load_or_exit(file: Path | None) -> Topology:
    try:
        return load_topology(file)
    except TopologyValidationError as error:
        for problem in error.problems:
            typer.echo(problem)
        raise typer.Exit(1) from None


@app.command()
def check(
    file: Annotated[
        Path | None,
        typer.Argument(help="Topology YAML file (default: the shipped Chengdu topology)."),
    ] = None,
) -> None:
    """Validate a topology file: exit 0, or 1 with one problem per line."""
    topology = _load_or_exit(file)
    typer.echo(
        f"ok {topology.version}: {len(topology.areas)} areas, "
        f"{len(topology.departments)} departments, {len(topology.centres)} centres, "
        f"{len(topology.categories)} categories, {len(topology.sensor_types)} sensor types"
    )


def _describe(topology: Topology, assignment: Assignment) -> list[str]:
    def area(code: str) -> str:
        spec = topology.area(code)
        return f"{code} {spec.name}" if spec is not None else code

    def department(department_id: str) -> str:
        spec = topology.department(department_id)
        return f"{department_id} {spec.name}" if spec is not None else department_id

    lines = [
        f"loop:                {assignment.loop}",
        f"handling area:       {area(assignment.handling_area)}",
        f"lead department:     {department(assignment.lead_department)}",
    ]
    lines += [f"co-department:       {department(d)}" for d in assignment.co_departments]
    lines.append(f"coordinating centre: {assignment.coordinating_centre or '-'}")
    lines.append(f"escalation chain:    {' -> '.join(assignment.escalation_chain)}")
    lines.append("reasons:")
    lines += [f"  {reason.rule}: {reason.detail}" for reason in assignment.reasons]
    lines.append(f"topology version:    {assignment.topology_version}")
    return lines


@app.command("route")
def route_command(
    category: Annotated[str, typer.Option("--category", "-c", help="Category code.")],
    area: Annotated[
        list[str],
        typer.Option("--area", "-a", help="Area code the reports fall in; repeat for several."),
    ],
    severity: Annotated[
        Severity | None, typer.Option("--severity", "-s", help="Severity grade I-IV.")
    ] = None,
    mode: Annotated[Mode, typer.Option("--mode", "-m", help="Operating mode.")] = Mode.NORMAL,
    as_json: Annotated[bool, typer.Option("--json", help="Print the decision as JSON.")] = False,
    topology_file: TopologyFile = None,
) -> None:
    """Print the routing decision for a case: loop, departments, centre, chain and why."""
    topology = _load_or_exit(topology_file)
    try:
        assignment = route(topology, category, area, severity, mode)
    except UnroutableError as error:
        typer.echo(f"unroutable: {error}", err=True)
        raise typer.Exit(1) from None
    if as_json:
        typer.echo(json.dumps(assignment.model_dump(mode="json"), ensure_ascii=False, indent=2))
    else:
        typer.echo("\n".join(_describe(topology, assignment)))


@app.command()
def publish(
    file: Annotated[
        Path, typer.Argument(help="Topology YAML file to put into service.", dir_okay=False)
    ],
) -> None:
    """Validate a topology file and publish it as the current version; running workers swap to
    it without a restart (each case records the version it was routed with)."""
    from kafka import KafkaProducer

    from cityloop.settings import get_settings
    from streams.topics import topics_for

    topology = _load_or_exit(file)
    settings = get_settings()
    producer = KafkaProducer(bootstrap_servers=settings.bootstrap_servers, acks="all")
    try:
        producer.send(topics_for(settings).topology, key=b"current", value=file.read_bytes()).get(
            timeout=30
        )
    finally:
        producer.close()
    typer.echo(f"published {topology.version} to {topics_for(settings).topology}")
