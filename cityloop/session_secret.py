"""The signing secret of a `cityloop up` session, kept where `cityloop token` finds it.

`cityloop up` without `CITYLOOP_JWT_SECRET` makes a secret for its session and writes it to a
file of the data directory that only its owner may read (0600); `cityloop token`, with the
variable unset, signs with what that file holds, so its tokens are taken by that session's API.
A new session writes a new secret: tokens of an earlier one are not taken."""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path

from cityloop.errors import ConfigurationError
from cityloop.settings import Settings

SECRET_FILE = "jwt-secret"  # noqa: S105 - a file name, not a secret
"""The file, in the data directory, that holds a session's secret."""


def secret_path(settings: Settings) -> Path:
    return settings.data_dir / SECRET_FILE


def new_session_secret() -> str:
    return secrets.token_urlsafe(32)


def write_session_secret(settings: Settings, secret: str) -> Path:
    """Write the secret to the data directory's secret file, readable by its owner only (0600),
    whole or not at all; return the file's path."""
    path = secret_path(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{SECRET_FILE}.{os.getpid()}")
    with contextlib.suppress(FileNotFoundError):
        partial.unlink()
    descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(descriptor, "w", encoding="ascii") as file:
            file.write(secret + "\n")
        os.replace(partial, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            partial.unlink()
        raise
    return path


def signing_secret(settings: Settings) -> tuple[str, str]:
    """The secret API tokens are signed with, and where it came from: CITYLOOP_JWT_SECRET when
    set, else the secret file of a `cityloop up` session in the data directory."""
    configured = settings.jwt_secret.get_secret_value()
    if configured:
        return configured, "CITYLOOP_JWT_SECRET"
    path = secret_path(settings)
    try:
        secret = path.read_text(encoding="ascii").strip()
    except (FileNotFoundError, NotADirectoryError):
        secret = ""
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigurationError(f"cannot read the session secret in {path}: {exc}") from exc
    if not secret:
        raise ConfigurationError(
            f"no secret to sign with: set CITYLOOP_JWT_SECRET to the API's secret, or start "
            f"`cityloop up` with this data directory (it writes its session's secret to {path})"
        )
    return secret, str(path)
