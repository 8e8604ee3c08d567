"""`syncer completion`: click's scripts for each shell, and dataset names completed
from the policies (the way the shells ask: the _SYNCER_COMPLETE protocol)."""

import pytest

from tests.support import run_syncer, write_policy


@pytest.mark.parametrize("shell, marker", [
    ("bash", "complete -o nosort -F _syncer_completion syncer"), ("zsh", "#compdef syncer"),
    ("fish", "complete --no-files --command syncer")])
def test_each_shell_gets_clicks_script(shell, marker):
    result = run_syncer("completion", shell)
    assert result.exit_code == 0 and marker in result.stdout and "_SYNCER_COMPLETE" in result.stdout


def test_dataset_names_complete_from_the_policies(tmp_path):
    for name in ("photos", "phone", "code"):
        write_policy(tmp_path, name, {"path": str(tmp_path / name), "authority": {"type": "local", "path": "/srv"}})
    environment = {"_SYNCER_COMPLETE": "bash_complete", "SYNCER_POLICIES": str(tmp_path)}
    for words in ("syncer verify ph", "syncer drill ph", "syncer auth smugmug ph"):
        result = run_syncer(env={**environment, "COMP_WORDS": words, "COMP_CWORD": "2" if "auth" not in words else "3"})
        assert sorted(result.stdout.split()) == ["plain,phone", "plain,photos"], (words, result.output)
