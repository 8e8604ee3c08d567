"""A pull's, a cloud restore's or a verify's report in the terminal says when items were counted but not kept."""

from syncer.cli.cloud import render_pull


def test_items_left_off_a_large_report_are_named(capsys):
    report = {"datasets": [{"name": "site", "authority": "bunnycdn:files", "counts": {"downloaded": 10_005},
                            "items": [{"path": f"f{number}", "status": "downloaded"} for number in range(3)],
                            "items_left_off": 10_002}]}
    render_pull(report)
    out = capsys.readouterr().out
    assert "10005 downloaded" in out and "f2" in out
    assert "another 10002 items are counted above but not listed" in out


def test_a_verify_names_the_items_it_counted_but_did_not_list(capsys):
    from syncer.cli.render import render_verify

    report = {"datasets": [{"name": "site", "authority": "local:/srv/a",
                            "counts": {"ok": 0, "missing_local": 10_003},
                            "items": [{"path": f"f{number}", "status": "missing_local"} for number in range(3)],
                            "items_left_off": 10_000}]}
    render_verify(report)
    out = capsys.readouterr().out
    assert "f2" in out and "another 10000 items are counted above but not listed" in out
