"""What the actions share: the bounded thread pool of transfers."""

import pytest

from syncer.actions.common import map_in_threads, run_in_threads
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


def test_the_bounded_pool_takes_jobs_only_as_it_frees_up():
    taken = []

    def jobs():
        for number in range(200):
            taken.append(number)
            yield number

    outcomes = []
    for job, result, error in map_in_threads(lambda job: job * 2, jobs(), 3, "test"):
        # a pool fed the whole list would have taken all 200 before the first outcome
        assert len(taken) - len(outcomes) <= 2 * 3, (len(taken), len(outcomes))
        outcomes.append((job, result, error))
    assert outcomes == [(number, number * 2, None) for number in range(200)]

