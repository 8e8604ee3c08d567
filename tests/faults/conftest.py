"""The fault suite's fixtures: a fresh figures file per session, and the figures
table at the end of the run."""

import os
from pathlib import Path

import pytest

from tests.faults import figures, support

STARTED = []
HERE = Path(__file__).resolve().parent


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):
    """`make faults` (-m faults) runs the whole fault suite, the quick slice included:
    the unmarked tests here take the marker before pytest selects by it. `make test`
    (-m "not faults") still runs only the quick slice."""
    if not full_run(config):
        return
    for item in items:
        if Path(str(item.path)).resolve().is_relative_to(HERE) and not item.get_closest_marker("faults"):
            item.add_marker(pytest.mark.faults)


def full_run(config):
    """`make faults`: -m faults, or its second pass -m "faults and restic_versions"."""
    return config.option.markexpr.replace(" ", "") in ("faults", "faultsandrestic_versions")


@pytest.fixture(scope="session", autouse=True)
def fresh_figures(request):
    """Each session starts its own figures file: the full run (-m faults) writes the
    one `make faults` summarises, any other run a separate one, so that a quick
    `make test` alongside never clobbers the full run's figures."""
    if not full_run(request.config):
        support.RESULTS = support.RESULTS.with_name("quick-" + support.RESULTS.name)
    support.RESULTS.parent.mkdir(parents=True, exist_ok=True)
    if not os.environ.get("SYNCER_FAULTS_APPEND"):  # `make faults`' second restic adds its rows
        support.RESULTS.write_text("")
    STARTED.append(support.RESULTS)
    yield


def pytest_terminal_summary(terminalreporter):
    rows = figures.read_rows(STARTED[0]) if STARTED else []
    if STARTED and rows:
        terminalreporter.write_sep("=", "fault injection figures")
        terminalreporter.write_line(figures.render(rows))
