"""Every command, at every depth, explains itself with --help and is named in the README."""

import re
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from syncer.cli.main import cli

README = Path(__file__).resolve().parents[3] / "README.md"


def walk(command, path=("syncer",)):
    """Yield (path, command) for `command` and everything below it."""
    yield path, command
    if isinstance(command, click.Group):
        for name, subcommand in sorted(command.commands.items()):
            yield from walk(subcommand, (*path, name))


COMMANDS = list(walk(cli))


def test_the_walk_reaches_nested_commands():
    names = {" ".join(path) for path, _ in COMMANDS}
    assert {"syncer", "syncer verify", "syncer systemd", "syncer systemd install"} <= names


@pytest.mark.parametrize("path, command", COMMANDS, ids=[" ".join(path) for path, _ in COMMANDS])
def test_help_explains_the_command_and_every_option(path, command):
    assert (command.help or "").strip(), f"{' '.join(path)} has no help text"
    for parameter in command.params:
        if isinstance(parameter, click.Option) and not parameter.hidden:
            assert (parameter.help or "").strip(), f"{' '.join(path)} {parameter.opts[0]} has no help text"
    result = CliRunner().invoke(cli, [*path[1:], "--help"])
    assert result.exit_code == 0, result.output
    first_line = command.help.strip().splitlines()[0]
    assert " ".join(first_line.split()) in " ".join(result.output.split())


@pytest.mark.parametrize("path", [path for path, _ in COMMANDS[1:]], ids=[" ".join(p) for p, _ in COMMANDS[1:]])
def test_the_readme_names_the_command(path):
    # "syncer check" must not be satisfied by "syncer check-policies".
    pattern = re.escape(" ".join(path)) + r"(?![\w-])"
    assert re.search(pattern, README.read_text()), f"README.md never names `{' '.join(path)}`"
