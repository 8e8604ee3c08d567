"""The `syncer` click group; command modules attach their commands to it."""

import click

from syncer import __version__
from syncer.cli.common import global_options


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@global_options
@click.version_option(__version__, prog_name="syncer")
def cli():
    """Keep datasets redundant and provably restorable.

    Exit codes: 0 all good; 1 findings (differences, corruption, a failed drill);
    2 bad usage or an invalid policy; 3 operational failure (an endpoint or the
    offsite repository unreachable, authentication refused, dataset busy).
    """
