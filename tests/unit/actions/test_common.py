"""What the actions share: the bounded thread pool of transfers."""

import pytest

from syncer.actions.common import run_in_threads
from syncer.errors import AuthenticationError, EndpointError


def test_outcomes_come_in_the_order_of_the_jobs_with_expected_errors_kept():
    def work(job):
        if job.startswith("bad"):
            raise EndpointError(f"{job} failed")
        return job.upper()

    outcomes = run_in_threads(work, ["a", "bad-b", "c"], 2, "test")
    assert [(job, result, str(error) if error else None) for job, result, error in outcomes] == [
        ("a", "A", None), ("bad-b", None, "bad-b failed"), ("c", "C", None)]


def test_refused_credentials_stop_the_pool_and_other_errors_are_not_swallowed():
    def refused(job):
        raise AuthenticationError("the token was refused")

    with pytest.raises(AuthenticationError):
        run_in_threads(refused, [1, 2, 3], 1, "test")
    with pytest.raises(ValueError):
        run_in_threads(lambda job: int(job), ["x"], 1, "test")
