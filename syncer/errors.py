"""The project's exception taxonomy and its exit codes.

Lower layers raise these; actions return results, per-dataset reports each with an
"exit_code". exit_code_of is the one place where either becomes the exit code, and
syncer.cli.main the one place that exits with it.
"""

EXIT_OK = 0
EXIT_FINDINGS = 1
EXIT_USAGE = 2
EXIT_FAILURE = 3


class SyncerError(Exception):
    """Base of every error syncer reports to a user; carries its exit code."""

    exit_code = EXIT_FAILURE


class Interrupted(SyncerError):
    """The user (Ctrl-C) or a signal stopped syncer."""

    exit_code = 130


class PolicyError(SyncerError):
    """A policy (or the set of policies) is invalid. Holds every problem found."""

    exit_code = EXIT_USAGE

    def __init__(self, problems):
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))


class UsageError(SyncerError):
    """The command line asks for something that cannot be done as asked."""

    exit_code = EXIT_USAGE


class CredentialError(SyncerError):
    """A credentials file is missing, too open, or lacks a key."""

    exit_code = EXIT_USAGE


class OperationalError(SyncerError):
    """Something outside syncer failed: an endpoint, the repository, the disk."""

    exit_code = EXIT_FAILURE


class EndpointError(OperationalError):
    """An authoritative copy could not be reached or refused a request.

    `permanent` tells the retry wrapper not to try again (401, 404, a bad name).
    """

    def __init__(self, message, *, permanent=False, retry_after=None):
        super().__init__(message)
        self.permanent = permanent
        self.retry_after = retry_after


class AuthenticationError(EndpointError):
    """The endpoint refused the credentials."""

    def __init__(self, message):
        super().__init__(message, permanent=True)


class StateDamaged(OperationalError):
    """The state database is damaged: no dataset can be worked on until it is mended."""


class LockBusy(OperationalError):
    """Another syncer process holds the dataset's lock."""


class ResticError(OperationalError):
    """restic failed; `exit_status` is restic's own exit code."""

    def __init__(self, message, exit_status=None):
        super().__init__(message)
        self.exit_status = exit_status


def exit_code_of(outcome):
    """Return the exit code of what a command ended with: an exception (a SyncerError
    carries its code, anything else is a bug: a failure), or its results, per-dataset
    reports (the worst of their "exit_code"; no results is 0)."""
    if isinstance(outcome, BaseException):
        return outcome.exit_code if isinstance(outcome, SyncerError) else EXIT_FAILURE
    return max((result.get("exit_code", EXIT_OK) for result in outcome or ()), default=EXIT_OK)
