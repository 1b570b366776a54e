"""The one logging setup: a line with time, level and role, or one JSON object a line; request ids;
and no secrets in either, whatever wrote the record."""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import sys

import pytest

from cityloop.logs import (
    ACCESS_LOGGER,
    REQUEST_ID,
    JsonFormatter,
    LineFormatter,
    configure_logging,
    redact,
    redacted_url,
)

JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl"


def record(
    message: str, *args: object, name: str = "streams.worker", **extra: object
) -> logging.LogRecord:
    made = logging.LogRecord(name, logging.WARNING, __file__, 1, message, args, None)
    made.__dict__.update(extra)
    return made


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        (
            "postgresql+asyncpg://cityloop:s3cr%40t@postgres:5432/cityloop",
            "postgresql+asyncpg://cityloop:***@postgres:5432/cityloop",
        ),
        ("kafka://user:pw@broker:9092 and more", "kafka://user:***@broker:9092 and more"),
        ("sqlite+aiosqlite:///var/cityloop.db", "sqlite+aiosqlite:///var/cityloop.db"),
        ("postgresql://postgres@127.0.0.1/test", "postgresql://postgres@127.0.0.1/test"),
        ("Authorization: Bearer abc.def-ghi", "Authorization: Bearer ***"),
        (f"token {JWT} signed", "token *** signed"),
        ("GET /console/login?ticket=abc123&next=/", "GET /console/login?ticket=***&next=/"),
        ("/v1/cases?status=open&limit=5", "/v1/cases?status=open&limit=5"),
    ],
)
def test_secrets_are_masked_and_nothing_else(text: str, shown: str) -> None:
    assert redact(text) == shown


def test_a_database_url_is_printed_without_its_password() -> None:
    assert redacted_url("postgresql+asyncpg://u:pw@h/db") == "postgresql+asyncpg://u:***@h/db"


def test_a_line_has_time_level_role_logger_and_the_request_id() -> None:
    line = LineFormatter("api").format(
        record("read model at %s", "postgresql://u:pw@h/db", request_id="req-7")
    )
    assert re.fullmatch(
        r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z WARNING api streams\.worker: "
        r"read model at postgresql://u:\*\*\*@h/db request_id=req-7",
        line,
    ), line


def test_a_traceback_is_part_of_its_line_and_masked() -> None:
    try:
        raise RuntimeError(f"cannot connect to postgresql://u:pw@h/db with {JWT}")
    except RuntimeError:
        failed = logging.LogRecord("api", logging.ERROR, __file__, 1, "failed", (), sys.exc_info())
    for formatter in (LineFormatter("api"), JsonFormatter("api")):
        text = formatter.format(failed)
        assert "Traceback" in text and "RuntimeError" in text
        assert "pw@" not in text and JWT not in text


def test_json_lines_carry_the_same_and_the_access_fields() -> None:
    line = JsonFormatter("api").format(
        record(
            "GET /v1/cases 200",
            name=ACCESS_LOGGER,
            request_id="abc",
            http={"method": "GET", "path": "/v1/cases", "status": 200, "duration_ms": 1.5},
        )
    )
    assert "\n" not in line
    document = json.loads(line)
    assert document["level"] == "WARNING" and document["role"] == "api"
    assert document["logger"] == ACCESS_LOGGER and document["message"] == "GET /v1/cases 200"
    assert document["request_id"] == "abc" and document["http"]["status"] == 200
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", document["time"])


def test_one_setup_for_the_process(capsys: pytest.CaptureFixture[str]) -> None:
    root = logging.getLogger()
    level = root.level
    try:
        configure_logging("WARNING", role="worker", log_format="json")
        configure_logging("WARNING", role="worker", log_format="json")  # again: one handler
        ours = [h for h in root.handlers if isinstance(h.formatter, JsonFormatter)]
        assert len(ours) == 1
        # uvicorn's records go through it; its own access log is off (api/access.py writes one)
        assert logging.getLogger("uvicorn.error").propagate
        assert not logging.getLogger("uvicorn.access").propagate
        assert logging.getLogger(ACCESS_LOGGER).isEnabledFor(logging.INFO)
        assert not logging.getLogger("aiokafka").isEnabledFor(logging.INFO)
        token = REQUEST_ID.set("req-1")
        try:
            logging.getLogger("api.projection").warning("projector paused: %s", "x")
        finally:
            REQUEST_ID.reset(token)
        document = json.loads(capsys.readouterr().err.strip().splitlines()[-1])
        assert document["request_id"] == "req-1" and document["role"] == "worker"
    finally:
        for handler in [h for h in root.handlers if isinstance(h.formatter, JsonFormatter)]:
            root.removeHandler(handler)
        root.setLevel(level)
        logging.captureWarnings(False)


def test_projection_migrate_prints_the_database_url_without_its_password(
    postgres_url: str,
) -> None:
    from sqlalchemy.engine import make_url

    # the test server trusts local connections: any password passes, and must not be printed
    with_password = make_url(postgres_url).set(password="hunter2-secret")  # noqa: S106
    done = subprocess.run(
        [sys.executable, "-m", "cityloop", "projection", "migrate"],
        env={
            **os.environ,
            "CITYLOOP_DATABASE_URL": with_password.render_as_string(hide_password=False),
        },
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    printed = done.stdout + done.stderr
    assert "is at the newest migration" in printed
    assert "hunter2-secret" not in printed and ":***@" in printed
