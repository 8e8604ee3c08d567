"""A pull's or a cloud restore's report in the terminal says when items were counted but not kept."""

from syncer.cli.cloud import render_pull


def test_items_left_off_a_large_report_are_named(capsys):
    report = {"datasets": [{"name": "site", "authority": "bunnycdn:files", "counts": {"downloaded": 10_005},
                            "items": [{"path": f"f{number}", "status": "downloaded"} for number in range(3)],
                            "items_left_off": 10_002}]}
    render_pull(report)
    out = capsys.readouterr().out
    assert "10005 downloaded" in out and "f2" in out
    assert "another 10002 items are counted above but not listed" in out
