"""What every command shares: global options, settings, the JSON flag."""

from dataclasses import dataclass, field
from pathlib import Path

import click

from syncer.log import mask, setup_logging


@dataclass
class Settings:
    policies_dir: Path | None = None
    state_dir: Path | None = None
    verbosity: int = 0
    policy_problems: list = field(default_factory=list)  # said on stderr; the command ran without them
    left_out: list = field(default_factory=list)  # the policy files whose datasets did not run
    ran_all: bool = False  # the command ran every dataset: a file left out made its exit code 2
    _db: object = field(default=None, repr=False)
    _policies: list | None = field(default=None, repr=False)

    def policies(self, names=()):
        """Return the policies named in `names` (all when empty).

        A file with a problem (its YAML, its schema, a clash with another file or with
        the state directory) is said on stderr once and left out; the others run, and when
        the command ran every dataset syncer.cli.main makes the exit code 2 at the end (a
        command that names its datasets is not failed by an unrelated file). What a policy needs on this
        machine is each action's to check: a missing disk fails that dataset alone.
        Raise PolicyError when no file loads, or when a dataset named may be in one that
        did not.
        """
        from syncer.errors import PolicyError
        from syncer.policy import read_policies, select_policies
        from syncer.policy.load import policy_files

        if self._policies is None:
            directory = self.existing_policies_dir()
            policies, problems = read_policies(directory, state_dir=self.resolved_state_dir())
            if problems and (not policies or not {policy.name for policy in policies} >= set(names)):
                raise PolicyError(problems)
            for problem in problems:
                click.echo(mask(problem), err=True)
            loaded = {policy.source for policy in policies}
            self.left_out = [path.name for path in policy_files(directory) if path not in loaded]
            self._policies, self.policy_problems = policies, problems
        self.ran_all = self.ran_all or not names
        return select_policies(self._policies, names)

    def existing_policies_dir(self):
        """Return the policies directory. Raise PolicyError naming the path tried and how
        to point at another when it does not exist."""
        from syncer.errors import PolicyError

        directory = self.resolved_policies_dir()
        if not directory.is_dir():
            chosen = ("given with --policies or SYNCER_POLICIES" if self.policies_dir
                      else "the default, as /etc/syncer/policies does not exist")
            raise PolicyError([f"policies directory {directory.absolute()} does not exist ({chosen}); point at "
                               f"yours with --policies DIR or SYNCER_POLICIES"])
        return directory

    def resolved_policies_dir(self):
        if self.policies_dir:
            return self.policies_dir
        system = Path("/etc/syncer/policies")
        return system if system.is_dir() else Path("policies")

    def resolved_state_dir(self):
        from syncer.index.db import default_state_dir

        return self.state_dir or default_state_dir()

    def db(self):
        from syncer.index.db import StateDB

        if self._db is None:
            self._db = StateDB(self.resolved_state_dir())
        return self._db

    def existing_db(self):
        """The state database for commands that only read it (status): never created.
        Raise UsageError naming the directory read, and how to point at another."""
        from syncer.errors import UsageError

        directory = Path(self.resolved_state_dir()).absolute()
        if self._db is None and not (directory / "state.db").is_file():
            chosen = "given with --state-dir or SYNCER_STATE_DIR" if self.state_dir else "the default"
            raise UsageError(f"no state database in {directory} ({chosen}): syncer has not run with this state "
                             f"directory. Point at the one your runs use with --state-dir DIR or SYNCER_STATE_DIR "
                             f"(after `make demo`: --state-dir .demo/state)")
        return self.db()


def store_option(ctx, param, value):
    """Global options are accepted before or after the command name; a value given
    on the command line wins over one from the environment."""
    settings = ctx.ensure_object(Settings)
    source = ctx.get_parameter_source(param.name)
    explicit = source == click.core.ParameterSource.COMMANDLINE
    if param.name == "verbose":
        if value:
            settings.verbosity = value
    elif param.name == "quiet":
        if value:
            settings.verbosity = -1
    elif value is not None and (explicit or getattr(settings, param.name) is None):
        setattr(settings, param.name, Path(value))
    return value


def global_options(command):
    options = [
        click.option("--policies", "policies_dir", envvar="SYNCER_POLICIES", expose_value=False,
                     callback=store_option, type=click.Path(file_okay=False),
                     help="Policies directory [env SYNCER_POLICIES; default /etc/syncer/policies, else ./policies]."),
        click.option("--state-dir", "state_dir", envvar="SYNCER_STATE_DIR", expose_value=False,
                     callback=store_option, type=click.Path(file_okay=False),
                     help="State directory [env SYNCER_STATE_DIR; default /var/lib/syncer as root]."),
        click.option("-v", "--verbose", count=True, expose_value=False, callback=store_option,
                     help="More log lines (-vv for libraries too)."),
        click.option("-q", "--quiet", is_flag=True, expose_value=False, callback=store_option,
                     help="Only warnings and errors."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


json_option = click.option("--json", "as_json", is_flag=True, help="Print the full report as one JSON document.")


def settings():
    """Return the Settings of this invocation, with logging set up."""
    current = click.get_current_context().ensure_object(Settings)
    setup_logging(current.verbosity)
    return current
