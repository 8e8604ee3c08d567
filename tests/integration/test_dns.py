"""DNSimple zones through the real CLI against the loopback fake: pull writes
`<zone>.json` and `<zone>.zone`, verify names the records that differ, a new SOA serial
is no change, hostile zone names stay outside the dataset."""

import json

from tests.fakes import dnsimple
from tests.integration.offsite_support import PASSWORD
from tests.support import require_tool, run_syncer, write_policy, write_secret


def dns_site(tmp_path, fake, offsite=False, **authority):
    write_secret(tmp_path / "secrets" / "dnsimple.env", dnsimple.credentials_text())
    (tmp_path / "dns").mkdir(exist_ok=True)
    document = {"path": str(tmp_path / "dns"),
                "authority": {"type": "dnsimple", "credentials": "../secrets/dnsimple.env", "api_url": fake.url,
                              **authority}}
    if offsite:
        require_tool("restic")
        password = write_secret(tmp_path / "secrets" / "restic.pass", PASSWORD + "\n")
        document["offsite"] = {"repository": str(tmp_path / "repo"), "password_file": str(password),
                               "manifest_root": str(tmp_path / "manifest-root")}
    write_policy(tmp_path / "policies", "dns", document)
    return lambda *arguments: run_syncer(*arguments, policies=tmp_path / "policies", state=tmp_path / "state",
                                         env={"RESTIC_CACHE_DIR": str(tmp_path / "restic-cache")})


def seed(fake):
    fake.add_zone("example.com")
    fake.add_record("example.com", "www", "A", "192.0.2.7", ttl=600)
    fake.add_record("example.com", "", "MX", "mx.example.net", priority=10)
    fake.add_record("example.com", "", "TXT", "v=spf1 include:_spf.example.net -all")
    fake.add_zone("example.org")
    fake.add_record("example.org", "", "ALIAS", "board.example.com")


def items_of(report):
    return {item["path"]: item for item in report["datasets"][0]["items"]}


def test_pull_writes_both_files_and_verify_names_a_changed_record_and_a_zone_only_upstream(tmp_path):
    with dnsimple.FakeDNSimple() as fake:
        seed(fake)
        syncer = dns_site(tmp_path, fake)
        pulled = syncer("pull", "--json")
        assert pulled.exit_code == 0, pulled.output
        assert pulled.json()["datasets"][0]["counts"] == {"downloaded": 4}
        document = json.loads((tmp_path / "dns" / "example.com.json").read_text())
        assert [(r["name"], r["type"]) for r in document["records"]] == [("", "MX"), ("", "TXT"), ("www", "A")]
        assert {r["type"] for r in document["system_records"]} == {"SOA", "NS"}
        assert all(set(r) == {"name", "type", "content", "ttl", "priority", "regions"}
                   for r in document["records"] + document["system_records"])
        assert (tmp_path / "dns" / "example.com.zone").read_text().startswith("$ORIGIN example.com.\n")
        assert not [path for path in (tmp_path / "dns").iterdir() if path.name.startswith(".")]

        fake.bump_serial(fake.zones["example.com"])  # DNSimple's own edit of the SOA
        clean = syncer("verify", "--json")
        assert clean.exit_code == 0, clean.output
        assert clean.json()["datasets"][0]["counts"]["ok"] == 4
        again = syncer("pull", "--json")
        assert again.json()["datasets"][0]["counts"] == {"up_to_date": 4}

        www = fake.find("example.com", "www", "A")[0]
        www["content"] = "192.0.2.99"
        del fake.zones["example.com"]["records"][fake.find("example.com", "", "MX")[0]["id"]]
        fake.bump_serial(fake.zones["example.com"])
        fake.add_zone("example.net")
        verified = syncer("verify", "--json")
        assert verified.exit_code == 1, verified.output
        items = items_of(verified.json())
        assert items["example.com.json"] == {
            "path": "example.com.json", "status": "changed",
            "reason": "+ www A 192.0.2.99 ttl 600; - @ MX 10 mx.example.net; - www A 192.0.2.7"}
        assert items["example.com.zone"]["status"] == "changed"
        assert items["example.net.json"]["status"] == items["example.net.zone"]["status"] == "missing_local"
        assert "example.org.json" not in items  # ok

        shown = syncer("verify")
        assert "+ www A 192.0.2.99 ttl 600; - @ MX 10 mx.example.net; - www A 192.0.2.7" in shown.stdout
        pulled = syncer("pull", "--json")
        assert pulled.json()["datasets"][0]["counts"] == {"downloaded": 4, "up_to_date": 2}
        assert syncer("verify").exit_code == 0


def test_hostile_zone_names_are_refused_and_nothing_is_written_outside_the_dataset(tmp_path):
    with dnsimple.FakeDNSimple() as fake:
        seed(fake)
        fake.add_raw_zone("../../escape.org")
        fake.add_raw_zone("sub/zone.org")
        fake.add_raw_zone("..")
        fake.add_zone("endless.org")
        fake.endless.add("endless.org")
        syncer = dns_site(tmp_path, fake)
        pulled = syncer("pull", "--json")
        assert pulled.exit_code == 1, pulled.output
        items = items_of(pulled.json())
        for path in ("../../escape.org.json", "sub/zone.org.zone", "...json"):
            assert items[path]["status"] == "refused" and items[path]["reason"].startswith("unsafe name")
        assert items["endless.org.json"]["status"] == "unverifiable"
        assert "goes on past 500 pages" in items["endless.org.json"]["reason"]
        assert sorted(path.name for path in (tmp_path / "dns").iterdir()) == [
            "example.com.json", "example.com.zone", "example.org.json", "example.org.zone"]
        assert not (tmp_path / "escape.org.json").exists() and not (tmp_path.parent / "escape.org.json").exists()


def test_push_damage_upstream_then_restore_to_cloud_matches_again_and_a_second_restore_writes_nothing(tmp_path):
    with dnsimple.FakeDNSimple() as fake:
        seed(fake)
        syncer = dns_site(tmp_path, fake, offsite=True)
        assert syncer("pull").exit_code == 0
        pushed = syncer("push")
        assert pushed.exit_code == 0, pushed.output
        snapshot_records = fake.records("example.com")
        system_ids = {record["id"] for record in fake.zones["example.com"]["records"].values()
                      if record["system_record"]}

        zone = fake.zones["example.com"]["records"]
        del zone[fake.find("example.com", "", "MX")[0]["id"]]  # a mistaken bulk edit
        fake.find("example.com", "www", "A")[0]["ttl"] = 60
        fake.find("example.com", "", "TXT")[0]["content"] = "v=spf1 +all"
        fake.add_record("example.com", "intruder", "A", "203.0.113.66")

        planned = syncer("restore", "dns", "--to", "cloud", "--dry-run", "--json")
        assert planned.exit_code == 0, planned.output
        assert planned.json()["counts"] == {"to_upload": 1, "follows": 1, "present": 2}
        [plan] = [item for item in planned.json()["items"] if item["status"] == "to_upload"]
        assert plan["reason"] == (
            "create @ MX 10 mx.example.net ttl 3600; create @ TXT v=spf1 include:_spf.example.net -all ttl 3600; "
            "update www A 192.0.2.7 ttl 60 -> 600; "
            "only upstream, kept (restore --delete deletes them): @ TXT v=spf1 +all ttl 3600; "
            "intruder A 203.0.113.66 ttl 3600")
        assert fake.writes == []

        restored = syncer("restore", "dns", "--to", "cloud", "--json")
        assert restored.exit_code == 0, restored.output
        assert restored.json()["counts"] == {"uploaded": 1, "follows": 1, "present": 2}
        kept = {("intruder", "A", "203.0.113.66"): (3600, None, ["global"]),
                ("", "TXT", "v=spf1 +all"): (3600, None, ["global"])}
        assert fake.records("example.com") == {**snapshot_records, **kept}
        assert not [write for write in fake.writes if write[2] in system_ids]  # system records never written
        writes = len(fake.writes)

        again = syncer("restore", "dns", "--to", "cloud", "--json")
        # the export holds the kept records too, so it still differs from the snapshot's: it follows, unwritten
        assert again.exit_code == 0 and again.json()["counts"] == {"present": 3, "follows": 1}
        assert len(fake.writes) == writes

        deleted = syncer("restore", "dns", "--to", "cloud", "--delete", "--json")
        [plan] = [item for item in deleted.json()["items"] if item["status"] == "uploaded"]
        assert plan["reason"] == "delete @ TXT v=spf1 +all; delete intruder A 203.0.113.66"
        assert deleted.json()["counts"] == {"uploaded": 1, "follows": 1, "present": 2}
        assert fake.records("example.com") == snapshot_records
        verified = syncer("verify", "--json")
        assert verified.exit_code == 0, verified.output
        assert verified.json()["datasets"][0]["counts"]["ok"] == 4
        assert syncer("restore", "dns", "--to", "cloud", "--delete", "--json").json()["counts"] == {"present": 4}
        assert len(fake.writes) == writes + 2  # the two deletes, then nothing


def test_syncer_auth_dnsimple_stores_a_checked_token_and_doctor_checks_it_with_whoami(tmp_path):
    with dnsimple.FakeDNSimple() as fake:
        syncer = dns_site(tmp_path, fake)
        credentials = write_secret(tmp_path / "secrets" / "dnsimple.env", "# kept by syncer auth\n")

        def auth(token):  # the token on standard input, as a script hands it over
            return run_syncer("auth", "dnsimple", "dns", policies=tmp_path / "policies", state=tmp_path / "state",
                              input=token + "\n")

        refused = auth("revoked-dnsimple-token")
        assert refused.exit_code == 3 and "DNSIMPLE_TOKEN" in refused.stderr, refused.output
        assert "revoked-dnsimple-token" not in refused.output
        assert credentials.read_text() == "# kept by syncer auth\n"
        stored = auth(dnsimple.TOKEN)
        assert stored.exit_code == 0, stored.output
        assert "account 1010" in stored.output and dnsimple.TOKEN not in stored.output
        assert credentials.read_text() == f"# kept by syncer auth\nDNSIMPLE_TOKEN={dnsimple.TOKEN}\n"
        doctor = syncer("doctor", "dns", "--json")
        [authority] = [check for check in doctor.json()["checks"] if check["check"] == "authority"]
        assert authority["status"] == "pass" and "account 1010 (ops@example.com)" in authority["detail"]
        assert fake.count_requests("GET", "/v2/whoami") == 3  # the refused check, the stored one, doctor's
