"""The `cityloop` command as a whole: its version, and the README's commands table names every
command its help lists."""

from __future__ import annotations

import re
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path
from typing import Any

import typer

from cityloop.cli import app

README = Path(__file__).resolve().parent.parent / "README.md"


def test_version_is_the_installed_packages(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "cityloop", "--version"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"cityloop {version('cityloop')}"


def subcommands(group: Any) -> dict[str, Any]:
    """A group's visible commands by name (typer's own click: no isinstance to lean on)."""
    context = group.context_class(group)
    found = {name: group.get_command(context, name) for name in group.list_commands(context)}
    return {name: command for name, command in found.items() if not command.hidden}


def commands(group: Any, prefix: str = "") -> list[str]:
    """Every command `cityloop --help` lists, and each group's own commands: `dlq list`."""
    found: list[str] = []
    for name, command in subcommands(group).items():
        if hasattr(command, "list_commands"):
            found += commands(command, f"{prefix}{name} ")
        else:
            found.append(prefix + name)
    return found


def test_the_readmes_commands_table_names_every_command() -> None:
    cli = typer.main.get_command(app)
    groups = {name for name, command in subcommands(cli).items() if hasattr(command, "commands")}
    text = README.read_text(encoding="utf-8")
    table = text[text.index("## Commands") :]
    table = table[: table.index("\n## ", 1)]
    named: set[str] = set()
    for row in table.splitlines():
        if not row.startswith("| `cityloop"):
            continue
        # `cityloop dlq list …` / `show ID` / `replay …`: the group's name is written once
        group = ""
        for span in re.findall(r"`([^`]+)`", row.split(" | ")[0]):
            words = span.removeprefix("cityloop ").split()
            if span.startswith("cityloop "):
                group = words[0] if words[0] in groups else ""
                named.add(f"{group} {words[1]}" if group else words[0])
            else:
                named.add(f"{group} {words[0]}" if group else words[0])
    assert [command for command in commands(cli) if command not in named] == []
    assert "--version" in named
