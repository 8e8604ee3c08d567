"""The fault suite's fixtures: a fresh figures file per session, and the figures
table at the end of the run."""

import pytest

from tests.faults import figures
from tests.faults.support import RESULTS

STARTED = []


@pytest.fixture(scope="session", autouse=True)
def fresh_figures():
    """Each session starts its own figures file."""
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text("")
    STARTED.append(True)
    yield


def pytest_terminal_summary(terminalreporter):
    rows = figures.read_rows() if STARTED else []
    if STARTED and rows:
        terminalreporter.write_sep("=", "fault injection figures")
        terminalreporter.write_line(figures.render(rows))
