"""`cityloop topology check` and `route`, through typer's runner."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from cityloop.cli_topology import app
from topology import tiny_topology_path

DATA = Path(__file__).parent / "data"
TINY = str(tiny_topology_path())
runner = CliRunner()


def test_check_default_file_passes() -> None:
    result = runner.invoke(app, ["check"])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("ok chengdu-2026.1: ")


def test_check_a_good_file_passes() -> None:
    result = runner.invoke(app, ["check", TINY])
    assert result.exit_code == 0, result.output
    assert "18 areas" in result.output


def test_check_a_broken_file_prints_one_problem_per_line() -> None:
    result = runner.invoke(app, ["check", str(DATA / "broken_many.yaml")])
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) >= 6
    assert "duplicate area code 990101 (2 times)" in lines
    assert not any(line.startswith("ok ") for line in lines)


def test_check_a_missing_file_fails() -> None:
    result = runner.invoke(app, ["check", str(DATA / "absent.yaml")])
    assert result.exit_code == 1
    assert result.output.startswith("cannot read")


def test_route_json_has_the_decision_fields() -> None:
    result = runner.invoke(
        app,
        [
            "route",
            "--category",
            "waterlogging",
            "--area",
            "510104001001",
            "--area",
            "510104002001",
            "--json",
            "--topology",
            TINY,
        ],
    )
    assert result.exit_code == 0, result.output
    decision = json.loads(result.output)
    assert decision["loop"] == "medium"
    assert decision["handling_area"] == "510104"
    assert decision["lead_department"] == "510104.water"
    assert decision["co_departments"] == ["510104.urban_management", "510104.traffic_police"]
    assert decision["coordinating_centre"] == "centre:510104"
    assert decision["escalation_chain"] == ["510104", "510100"]
    assert decision["topology_version"] == "tiny-1"
    rules = [reason["rule"] for reason in decision["reasons"]]
    assert "cross_area_common_ancestor" in rules and "cross_department" in rules


def test_route_severity_and_mode_options() -> None:
    severe = runner.invoke(
        app,
        ["route", "-c", "fire", "-a", "510104001001", "--severity", "I", "--json", "-t", TINY],
    )
    emergency = runner.invoke(
        app,
        [
            "route",
            "-c",
            "waterlogging",
            "-a",
            "510104001001",
            "--mode",
            "emergency",
            "--json",
            "-t",
            TINY,
        ],
    )
    assert json.loads(severe.output)["loop"] == "big"
    assert json.loads(emergency.output)["loop"] == "medium"


def test_route_prints_a_readable_decision_on_chengdu() -> None:
    result = runner.invoke(app, ["route", "-c", "garbage_exposed", "-a", "510104001001"])
    assert result.exit_code == 0, result.output
    assert "loop:                micro" in result.output
    assert "lowest_capable_level:" in result.output
    assert "510104001001.urban_management" in result.output


def test_route_an_unknown_area_fails() -> None:
    result = runner.invoke(app, ["route", "-c", "pothole", "-a", "510199001001", "-t", TINY])
    assert result.exit_code == 1
    assert "unknown_area" in result.output


def test_route_a_bad_severity_is_a_usage_error() -> None:
    result = runner.invoke(app, ["route", "-c", "fire", "-a", "510104", "-s", "V", "-t", TINY])
    assert result.exit_code == 2
