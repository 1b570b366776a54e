"""docker-compose.yml, checked without a Docker engine: it is a valid Compose file (the
compose-spec JSON schema, vendored in tests/data from the compose-spec project with its Apache-2.0
licence, as the check-jsonschema package ships it), it refuses to start without its secrets,
the API and the worker have health checks that ask what readiness means for each, departmental
systems have an authenticated Kafka listener of their own, and one port serves the API and the
console."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import jsonschema_rs
import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
COMPOSE_FILE = ROOT / "docker-compose.yml"
SCHEMA = Path(__file__).parent / "data" / "compose-spec.json"
SECRETS = {"POSTGRES_PASSWORD": "pg-password", "CITYLOOP_JWT_SECRET": "jwt-secret"}

VARIABLE = re.compile(
    r"\$(?:(?P<escaped>\$)|\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?+])(?P<arg>[^}]*))?\}"
    r"|(?P<bare>[A-Za-z_][A-Za-z0-9_]*))"
)


class MissingVariable(Exception):
    pass


def interpolate(value: Any, env: dict[str, str]) -> Any:
    """Compose's interpolation of `${VAR}`, `${VAR:-default}`, `${VAR-default}`, `${VAR:?error}`,
    `${VAR?error}`, `${VAR:+other}` and `$$` in every string of the file."""
    if isinstance(value, dict):
        return {key: interpolate(item, env) for key, item in value.items()}
    if isinstance(value, list):
        return [interpolate(item, env) for item in value]
    if not isinstance(value, str):
        return value

    def substitute(match: re.Match[str]) -> str:
        if match["escaped"]:
            return "$"
        name = match["name"] or match["bare"]
        op, arg = match["op"], match["arg"] or ""
        unset = name not in env
        empty = unset or env[name] == ""
        if op in (":-", "-"):
            return arg if (empty if op == ":-" else unset) else env[name]
        if op in (":?", "?"):
            if empty if op == ":?" else unset:
                raise MissingVariable(f"{name}: {arg}")
            return env[name]
        if op in (":+", "+"):
            return "" if (empty if op == ":+" else unset) else arg
        return "" if unset else env[name]

    return VARIABLE.sub(substitute, value)


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))
    return document


def test_the_file_is_valid_compose_as_written_and_as_interpolated(compose: dict[str, Any]) -> None:
    validator = jsonschema_rs.validator_for(json.loads(SCHEMA.read_text(encoding="utf-8")))
    for document in (compose, interpolate(compose, SECRETS)):
        errors = [
            f"{error.instance_path}: {error.message}" for error in validator.iter_errors(document)
        ]
        assert errors == []


@pytest.mark.parametrize("missing", sorted(SECRETS))
def test_it_refuses_to_start_without_a_secret(compose: dict[str, Any], missing: str) -> None:
    for unset in ({}, {missing: ""}):
        env = {**{name: value for name, value in SECRETS.items() if name != missing}, **unset}
        with pytest.raises(MissingVariable, match=missing):
            interpolate(compose, env)


def test_no_secret_has_a_default(compose: dict[str, Any]) -> None:
    text = COMPOSE_FILE.read_text(encoding="utf-8")
    for name in SECRETS:
        uses = re.findall(rf"\$\{{{name}(:?[-?+])?", text)
        assert uses and all(op == ":?" for op in uses), (name, uses)
    config = interpolate(compose, SECRETS)
    for service in ("worker", "api"):
        environment = config["services"][service]["environment"]
        assert environment["CITYLOOP_JWT_SECRET"] == SECRETS["CITYLOOP_JWT_SECRET"]
        assert f":{SECRETS['POSTGRES_PASSWORD']}@postgres" in environment["CITYLOOP_DATABASE_URL"]


def health_check(config: dict[str, Any], service: str) -> str:
    test = config["services"][service]["healthcheck"]["test"]
    return " ".join(test) if isinstance(test, list) else str(test)


def test_the_api_and_the_worker_say_when_they_are_healthy(compose: dict[str, Any]) -> None:
    config = interpolate(compose, SECRETS)
    api = health_check(config, "api")
    assert "http://127.0.0.1:8000/readyz" in api  # broker and database, not liveness only
    api_command = config["services"]["api"]["command"]
    assert api_command[api_command.index("--port") + 1] == "8000"
    worker = config["services"]["worker"]
    port = worker["environment"]["CITYLOOP_WORKER_METRICS_PORT"]
    assert f"http://127.0.0.1:{port}/metrics" in health_check(config, "worker")
    assert worker["environment"]["CITYLOOP_WORKER_METRICS_HOST"] == "0.0.0.0"  # noqa: S104
    for service in ("api", "worker"):
        assert health_check(config, service).startswith("CMD python -c")  # the image has no curl


def environment_of(config: dict[str, Any], service: str) -> dict[str, str]:
    return {key: str(value) for key, value in config["services"][service]["environment"].items()}


def test_departmental_systems_have_an_authenticated_listener_of_their_own(
    compose: dict[str, Any],
) -> None:
    config = interpolate(compose, {**SECRETS, "KAFKA_EXTERNAL_HOST": "kafka.chengdu.example"})
    kafka = environment_of(config, "kafka")
    assert "EXTERNAL://:9094" in kafka["KAFKA_LISTENERS"].split(",")
    advertised = kafka["KAFKA_ADVERTISED_LISTENERS"].split(",")
    assert "EXTERNAL://kafka.chengdu.example:9094" in advertised  # advertised from a variable
    assert "PLAINTEXT://kafka:9092" in advertised
    protocols = dict(
        pair.split(":") for pair in kafka["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"].split(",")
    )
    assert protocols["EXTERNAL"].startswith("SASL_")
    assert kafka["KAFKA_LISTENER_NAME_EXTERNAL_SASL_ENABLED_MECHANISMS"] == "SCRAM-SHA-512"
    assert kafka["KAFKA_AUTHORIZER_CLASS_NAME"].endswith("StandardAuthorizer")
    assert kafka["KAFKA_ALLOW_EVERYONE_IF_NO_ACL_FOUND"] == "false"
    # only EXTERNAL is published on the host; the host port follows the advertised one
    assert config["services"]["kafka"]["ports"] == ["9094:9094"]
    moved = interpolate(compose, {**SECRETS, "KAFKA_EXTERNAL_PORT": "19094"})
    assert moved["services"]["kafka"]["ports"] == ["19094:9094"]
    assert (
        "EXTERNAL://localhost:19094" in environment_of(moved, "kafka")["KAFKA_ADVERTISED_LISTENERS"]
    )
    # cityloop's own processes stay on the compose network's listener
    assert environment_of(config, "worker")["KAFKA_BOOTSTRAP_SERVERS"] == "kafka:9092"


def test_one_port_serves_the_api_and_the_console(compose: dict[str, Any]) -> None:
    config = interpolate(compose, SECRETS)
    published = {name: service.get("ports", []) for name, service in config["services"].items()}
    assert published["api"] == ["8000:8000"]
    assert [name for name, ports in published.items() if ports] == ["kafka", "api"]
    assert "console" not in config["services"]  # the API serves /console itself
