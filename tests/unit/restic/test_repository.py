"""Parsers of restic's output."""

import pytest

from syncer.restic.repository import parse_backup_summary, unreadable_files
from syncer.restic.runner import ResticFailed


def test_backup_summary_and_unreadable_files():
    messages = [{"message_type": "verbose_status"}, {"message_type": "summary", "snapshot_id": "abcd1234"}]
    assert parse_backup_summary(messages)["snapshot_id"] == "abcd1234"
    with pytest.raises(ResticFailed):
        parse_backup_summary([])
    errors = [{"message_type": "error", "error": {"Op": "open", "Path": "/d/x", "Err": 13}, "item": "/d/x"}]
    found = unreadable_files(errors, ["error: open /d/y: permission denied", "Warning: at least one"])
    assert found == [("/d/x", "open: Permission denied"), ("/d/y", "permission denied")]
