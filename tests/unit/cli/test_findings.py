"""`syncer findings`: every finding of the last verify, past the report's 10,000 items."""

import json

import pytest

from syncer.actions import verify
from syncer.actions.common import ItemTally
from syncer.cli.main import main
from tests.support import write_policy, write_tree

LOCAL = {"same.txt": "same", "edited.txt": "here", "only-here.txt": "x", "new\nline.txt": "n"}
AUTHORITY = {"same.txt": "same", "edited.txt": "there", "only-there.txt": "y"}


@pytest.fixture
def site(tmp_path, monkeypatch, capsys):
    """Datasets `docs` (verified, with a report that lists one item of four findings)
    and `other` (never verified)."""
    monkeypatch.setattr(verify, "ItemTally", lambda **options: ItemTally(limit=1, **options))
    for name, files in (("docs", LOCAL), ("other", {})):
        write_tree(tmp_path / name, files)
        write_policy(tmp_path / "policies", name, {
            "path": str(tmp_path / name), "authority": {"type": "local", "path": str(tmp_path / f"{name}-authority")}})
    write_tree(tmp_path / "docs-authority", AUTHORITY)
    (tmp_path / "other-authority").mkdir()
    code, out = run(tmp_path, "verify", "docs", "--json", capsys=capsys)
    report = json.loads(out)
    assert code == 1 and len(report["datasets"][0]["items"]) == 1 and report["datasets"][0]["items_left_off"] == 3
    return tmp_path


def run(site, *arguments, capsys=None):
    with pytest.raises(SystemExit) as exited:
        main(["--policies", str(site / "policies"), "--state-dir", str(site / "state"), *arguments])
    if capsys is None:
        return exited.value.code, None
    return exited.value.code, capsys.readouterr().out


def test_every_finding_is_listed_in_path_order_past_the_reports_limit(site, capsys):
    capsys.readouterr()
    code, out = run(site, "findings", "docs", "--json", capsys=capsys)
    [dataset] = json.loads(out)["datasets"]
    assert code == 1
    assert dataset["name"] == "docs" and dataset["verified_at"] > 0
    assert dataset["counts"] == {"changed": 1, "extra_local": 2, "missing_local": 1}
    assert [(item["path"], item["status"]) for item in dataset["items"]] == [
        ("edited.txt", "changed"), ("new\nline.txt", "extra_local"), ("only-here.txt", "extra_local"),
        ("only-there.txt", "missing_local")]
    assert "differ" in dataset["items"][0]["reason"] or "size" in dataset["items"][0]["reason"]


def test_a_status_chosen_lists_only_those_and_the_exit_code_follows_what_is_listed(site, capsys):
    capsys.readouterr()
    code, out = run(site, "findings", "docs", "--status", "missing_local", "--json", capsys=capsys)
    [dataset] = json.loads(out)["datasets"]
    assert code == 1 and [item["path"] for item in dataset["items"]] == ["only-there.txt"]
    code, out = run(site, "findings", "docs", "--status", "unverifiable", "--json", capsys=capsys)
    [dataset] = json.loads(out)["datasets"]
    assert code == 0 and dataset["items"] == [] and dataset["counts"] == {}


def test_the_text_lists_one_item_a_line_with_names_escaped(site, capsys):
    capsys.readouterr()
    code, out = run(site, "findings", capsys=capsys)
    lines = out.splitlines()
    assert code == 1
    assert lines[0].startswith("docs: 1 changed, 2 extra_local, 1 missing_local (verify of ")
    assert [line.split()[:2] for line in lines[1:5]] == [
        ["changed", "edited.txt"], ["extra_local", "$'new\\nline.txt'"], ["extra_local", "only-here.txt"],
        ["missing_local", "only-there.txt"]]
    assert lines[5] == "other: never verified (`syncer verify other`)"


def test_the_verify_report_points_at_the_command_that_lists_what_it_left_off(site, capsys):
    capsys.readouterr()
    code, out = run(site, "verify", "docs", capsys=capsys)
    assert code == 1
    assert "another 3 items are counted above but not listed, not even by --json: `syncer findings docs` lists " \
           "every one" in out


def test_a_state_directory_that_is_not_there_is_not_created(tmp_path, capsys):
    write_policy(tmp_path / "policies", "docs", {"path": str(tmp_path), "authority": {"type": "local",
                                                                                      "path": str(tmp_path)}})
    code, _ = run(tmp_path, "findings", "docs", capsys=capsys)
    assert code == 2 and not (tmp_path / "state").exists()


def test_a_path_with_two_statuses_is_listed_with_both_and_counts_as_a_finding(tmp_path, capsys):
    """A symlink here where the authority has a file: missing_local and unverifiable."""
    write_tree(tmp_path / "data", {"real.txt": "r"})
    (tmp_path / "data/link.txt").symlink_to(tmp_path / "data/real.txt")
    write_tree(tmp_path / "authority", {"real.txt": "r", "link.txt": "a file there"})
    write_policy(tmp_path / "policies", "docs", {
        "path": str(tmp_path / "data"), "authority": {"type": "local", "path": str(tmp_path / "authority")}})
    code, _ = run(tmp_path, "verify", "docs", capsys=capsys)
    assert code == 1
    code, out = run(tmp_path, "findings", "docs", "--json", capsys=capsys)
    [dataset] = json.loads(out)["datasets"]
    assert code == 1 and dataset["counts"] == {"missing_local": 1, "unverifiable": 1}
    assert [(item["path"], item["status"]) for item in dataset["items"]] == [
        ("link.txt", "missing_local"), ("link.txt", "unverifiable")]
