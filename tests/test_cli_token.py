"""`cityloop token`: every role but the auditor's names its scope, a publisher its sources;
a mistake is one line and exit 2; with CITYLOOP_JWT_SECRET unset it signs with the secret
`cityloop up` keeps for its session in the data directory."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from io import StringIO
from pathlib import Path

import jwt
import pytest
from rich.console import Console

from api.auth import read_token
from cityloop.session_secret import SECRET_FILE, signing_secret, write_session_secret
from cityloop.settings import Settings
from cityloop.supervisor import Supervisor
from handlers.access import Role


def cityloop_token(
    *args: str, data_dir: Path, secret: str | None = None
) -> subprocess.CompletedProcess[str]:
    env = {key: value for key, value in os.environ.items() if key != "CITYLOOP_JWT_SECRET"}
    env["CITYLOOP_DATA_DIR"] = str(data_dir)
    if secret is not None:
        env["CITYLOOP_JWT_SECRET"] = secret
    return subprocess.run(
        [sys.executable, "-m", "cityloop", "token", *args],
        env=env,
        cwd=data_dir,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--role", "bogus"], "unknown role 'bogus'"),
        (["--role", "duty_officer"], "needs --scope"),
        (["--role", "dispatcher"], "needs --scope"),
        (["--role", "department"], "needs --scope"),
        (["--role", "publisher", "--scope", "hotline"], "--source"),
    ],
)
def test_a_token_that_names_no_principal_is_one_line_and_exit_2(
    tmp_path: Path, args: list[str], says: str
) -> None:
    result = cityloop_token(*args, data_dir=tmp_path, secret="s" * 32)
    assert result.returncode == 2, result.stderr
    assert result.stdout == ""
    assert "Traceback" not in result.stderr
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("error: ") and says in line


def test_with_the_secret_set_the_token_names_role_scope_and_sources(tmp_path: Path) -> None:
    result = cityloop_token(
        "--role", "publisher", "--scope", "hotline",
        "--source", "/12345/chengdu", "--source", "/cityloop/open311",
        data_dir=tmp_path, secret="s" * 32,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    claims = jwt.decode(result.stdout.strip(), "s" * 32, algorithms=["HS256"])
    assert (claims["role"], claims["scope"]) == ("publisher", "hotline")
    assert claims["sources"] == ["/12345/chengdu", "/cityloop/open311"]


def test_without_the_secret_it_signs_with_the_session_secret_up_keeps(tmp_path: Path) -> None:
    missing = cityloop_token("--role", "auditor", data_dir=tmp_path)
    assert missing.returncode == 2 and "cityloop up" in missing.stderr
    assert len(missing.stderr.strip().splitlines()) == 1

    out = StringIO()
    settings = Settings(data_dir=tmp_path, jwt_secret="")
    supervisor = Supervisor(settings, Console(file=out, width=400))
    supervisor._keep_secret()  # what `up` does before it starts the API
    path = tmp_path / SECRET_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert str(path) in out.getvalue() and "cityloop token" in out.getvalue()
    assert signing_secret(settings) == (supervisor.jwt_secret, str(path))

    minted = cityloop_token("--role", "duty_officer", "--scope", "510100", data_dir=tmp_path)
    assert minted.returncode == 0, minted.stderr
    principal, _ = read_token(supervisor.jwt_secret, minted.stdout.strip(), 0)
    assert principal.role is Role.DUTY_OFFICER and principal.scope == "510100"


def test_a_session_secret_replaces_the_last_and_stays_private(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "var", jwt_secret="")
    path = write_session_secret(settings, "first")
    path.chmod(0o644)  # loosened by hand: the next session's is private again
    write_session_secret(settings, "second")
    assert path.read_text() == "second\n"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in path.parent.iterdir()] == [SECRET_FILE]


def test_up_with_the_secret_set_writes_no_file(tmp_path: Path) -> None:
    out = StringIO()
    settings = Settings(data_dir=tmp_path, jwt_secret="configured" * 4)
    supervisor = Supervisor(settings, Console(file=out, width=400))
    supervisor._keep_secret()
    assert not (tmp_path / SECRET_FILE).exists()
    assert "CITYLOOP_JWT_SECRET" in out.getvalue()
    assert supervisor.jwt_secret == "configured" * 4
