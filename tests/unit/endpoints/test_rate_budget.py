"""The rate-limit budget (syncer.endpoints.http.RateBudget): pause before it runs out."""

from syncer.endpoints.http import RateBudget


def headers(remaining, reset):
    return {"X-RateLimit-Limit": "2400", "X-RateLimit-Remaining": str(remaining), "X-RateLimit-Reset": str(reset)}


def test_no_pause_until_the_reserve_is_reached_then_until_the_reset_and_none_after_it():
    budget = RateBudget(reserve=5)
    assert budget.pause(now=2_000_000_000) is None  # nothing known yet
    budget.update(headers(6, 2_000_000_100))
    assert budget.pause(now=2_000_000_000) is None
    budget.update(headers(5, 2_000_000_100))
    assert budget.pause(now=2_000_000_000) == 101  # the reset's second is waited out too
    assert budget.pause(now=2_000_000_101) is None  # a new window: the next answer says how much
    assert budget.remaining is None


def test_a_reset_in_seconds_and_headers_that_are_not_numbers():
    budget = RateBudget(reserve=5)
    budget.update({"X-RateLimit-Remaining": "many", "X-RateLimit-Reset": "soon"})
    assert budget.pause() is None
    budget.update(headers(0, 30))  # seconds to wait, not an epoch time
    assert 29 < budget.pause() <= 31
