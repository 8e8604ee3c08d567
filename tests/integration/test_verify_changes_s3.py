"""verify by changes against a real S3 server on 127.0.0.1: the bucket is listed whole
(its changes can be seen no other way), but only the keys whose listing changed, and the
local paths the watch saw change, are judged; the findings are a full verify's."""

import uuid

from syncer.actions.verify import run_verify
from syncer.index.db import StateDB
from syncer.policy import load_policies
from tests.support import write_policy, write_secret, write_tree

FILES = {f"site/{n:02d}.html": f"<p>{n}</p>" for n in range(30)} | {"a.txt": "alpha", "b.txt": "beta"}


def test_bucket_changes_are_found_in_sql_and_only_they_are_judged(tmp_path, s3_server):
    bucket = f"b-{uuid.uuid4().hex[:12]}"
    client = s3_server.client()
    client.create_bucket(Bucket=bucket)
    for key, body in FILES.items():
        client.put_object(Bucket=bucket, Key=key, Body=body.encode())
    write_tree(tmp_path / "local", FILES)
    credentials = write_secret(tmp_path / "s3.env", s3_server.credentials_text())
    write_policy(tmp_path / "p", "site", {"path": str(tmp_path / "local"), "authority": {
        "type": "s3", "bucket": bucket, "endpoint_url": s3_server.url, "credentials": str(credentials)}})
    [policy] = load_policies(tmp_path / "p")
    db = StateDB(tmp_path / "state")
    try:
        [first] = run_verify([policy], db)["datasets"]
        assert first["counts"]["ok"] == len(FILES)
        client.put_object(Bucket=bucket, Key="a.txt", Body=b"ALPHA")  # edited upstream
        client.put_object(Bucket=bucket, Key="new.txt", Body=b"new")  # added upstream
        client.delete_object(Bucket=bucket, Key="site/07.html")  # deleted upstream
        (tmp_path / "local" / "b.txt").write_text("BETA")  # edited here, seen by the watch
        [changed] = run_verify([policy], db, changed={"site": ["b.txt"]})["datasets"]
        assert changed["local"]["examined"] == "changes" and changed["compared"] == 4
        [full] = run_verify([policy], db)["datasets"]
        assert changed["counts"] == full["counts"] and changed["items"] == full["items"]
        assert {item["path"]: item["status"] for item in full["items"]} == {
            "a.txt": "changed", "b.txt": "changed", "new.txt": "missing_local", "site/07.html": "extra_local"}
        [again] = run_verify([policy], db, changed={"site": []})["datasets"]
        assert again["compared"] == 0 and again["items"] == full["items"] and again["counts"] == full["counts"]
    finally:
        db.close()
