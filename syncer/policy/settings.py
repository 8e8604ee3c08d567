"""Values a policy and syncer.yaml share: durations, cron expressions, and the
notify and watch settings of a dataset. Pure functions, no I/O."""

import re

DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
UNIT_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, None: 1}
WEEKDAY_NAMES = ("sun", "mon", "tue", "wed", "thu", "fri", "sat", "sun")


def parse_duration(value):
    """Return the seconds `value` stands for: a number of seconds, or text like 90s,
    10m, 1.5h, 2d. Raise ValueError for anything else."""
    if isinstance(value, bool):
        raise ValueError("not a duration")
    if isinstance(value, (int, float)):
        if not 0 <= value < float("inf"):
            raise ValueError("not a duration")
        return float(value)
    match = DURATION.match(value) if isinstance(value, str) else None
    if not match:
        raise ValueError("not a duration")
    return float(match.group(1)) * UNIT_SECONDS[match.group(2)]


def notify_settings(policy, global_settings):
    """Return the Notify settings of `policy`: the keys its `notify` section gives, over
    syncer.yaml's."""
    own = policy.notify
    return global_settings.notify.model_copy(update={key: getattr(own, key) for key in own.model_fields_set})


def watch_settings(policy):
    """Return (watch, debounce_seconds) of `policy`."""
    return policy.watch, policy.watch_debounce


def cron_trigger(expression, jitter=None, timezone=None):
    """Return an apscheduler CronTrigger for a cron expression: five fields (minute hour
    day month weekday) as in crontab(5), or six with seconds first.

    Weekday numbers mean what cron means (0 and 7 Sunday): apscheduler 3 itself would
    take 0 as Monday. Raise ValueError for an invalid expression.
    """
    from apscheduler.triggers.cron import CronTrigger

    fields = expression.split()
    if len(fields) not in (5, 6):
        raise ValueError(f"{expression!r} has {len(fields)} fields, not 5 (or 6 with seconds first)")
    second = fields.pop(0) if len(fields) == 6 else "0"
    minute, hour, day, month, weekday = fields
    weekday = re.sub(r"(?<![/\d])\d+", lambda m: weekday_name(m.group(0)), weekday)
    return CronTrigger(second=second, minute=minute, hour=hour, day=day, month=month, day_of_week=weekday,
                       jitter=jitter or None, timezone=timezone)


def weekday_name(number):
    if int(number) > 7:
        raise ValueError(f"weekday {number} is out of range (0-7)")
    return WEEKDAY_NAMES[int(number)]


def cron_gaps(expression, now=None, samples=8):
    """Return the gaps, in seconds, between the next `samples` + 1 times of a cron
    expression."""
    from datetime import UTC, datetime

    trigger = cron_trigger(expression, timezone=UTC)
    moment = datetime.fromtimestamp(now, UTC) if now else datetime.now(UTC)
    times = []
    previous = None
    for _ in range(samples + 1):
        moment = trigger.get_next_fire_time(previous, moment)
        if moment is None:
            break
        times.append(moment)
        previous = moment
    return [(later - earlier).total_seconds() for earlier, later in zip(times, times[1:])]


def cron_interval(expression, now=None, samples=8):
    """Return the longest gap, in seconds, between successive times of a cron expression
    (over the next `samples` of them): the interval a stale check should allow."""
    gaps = cron_gaps(expression, now, samples)
    return max(gaps) if gaps else None
