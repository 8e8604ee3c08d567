"""`syncer serve`'s application, called as WSGI without a server: routes, methods, token."""

import json
import logging

import pytest

from syncer.errors import UsageError
from syncer.index.db import StateDB
from syncer.web import StatusApp, is_loopback, parse_listen

TOKEN = "0123456789abcdef-token"


def call(app, method="GET", path="/", query="", authorization=None):
    answered = {}

    def start_response(status, headers):
        answered.update(status=status, headers=dict(headers))

    environ = {"REQUEST_METHOD": method, "PATH_INFO": path, "QUERY_STRING": query}
    if authorization:
        environ["HTTP_AUTHORIZATION"] = authorization
    body = b"".join(app(environ, start_response))
    return answered["status"], answered["headers"], body


@pytest.mark.parametrize("listen, expected", [("127.0.0.1:8473", ("127.0.0.1", 8473)), ("[::1]:80", ("::1", 80)),
                                              ("0.0.0.0:9000", ("0.0.0.0", 9000))])
def test_listen_is_host_and_port(listen, expected):
    assert parse_listen(listen) == expected


@pytest.mark.parametrize("listen", ["8473", "127.0.0.1", "127.0.0.1:0", "127.0.0.1:70000", ":8473", "host:port"])
def test_a_listen_without_host_or_port_is_a_usage_error(listen):
    with pytest.raises(UsageError, match="give HOST:PORT"):
        parse_listen(listen)


def test_loopback_is_the_loopback_addresses_and_localhost_only():
    assert all(map(is_loopback, ["127.0.0.1", "127.8.9.1", "::1", "localhost"]))
    assert not any(map(is_loopback, ["0.0.0.0", "::", "192.168.1.2", "board.local"]))


def test_routes_and_methods(tmp_path):
    StateDB(tmp_path).close()
    app = StatusApp([], tmp_path)
    status, headers, body = call(app)
    assert status == "200 OK" and headers["Content-Type"].startswith("text/html") and b"0 datasets" in body
    assert headers["Content-Security-Policy"].startswith("default-src 'none'")
    status, headers, body = call(app, "HEAD", "/api/status")
    assert status == "200 OK" and body == b"" and int(headers["Content-Length"]) > 0
    assert call(app, "GET", "/api/status")[2] == b'{\n  "datasets": []\n}\n'
    assert call(app, "PUT")[0] == "405 Method Not Allowed" and call(app, "GET", "/../etc")[0] == "404 Not Found"


def test_a_token_is_needed_on_every_path_and_compared_whole(tmp_path):
    StateDB(tmp_path).close()
    app = StatusApp([], tmp_path, TOKEN)
    for path in ("/", "/metrics", "/api/status", "/nothing"):
        assert call(app, "GET", path)[0] == "401 Unauthorized"
    assert call(app, authorization=f"Bearer {TOKEN[:-1]}")[0] == "401 Unauthorized"
    assert call(app, authorization=f"Bearer {TOKEN}x")[0] == "401 Unauthorized"
    assert call(app, authorization=f"Basic {TOKEN}")[0] == "401 Unauthorized"
    assert call(app, query="token=")[0] == "401 Unauthorized"
    assert call(app, authorization=f"Bearer {TOKEN}")[0] == "200 OK"
    assert call(app, "GET", "/metrics", query=f"token={TOKEN}")[0] == "200 OK"
    assert call(app, "DELETE", authorization=f"Bearer {TOKEN}")[0] == "405 Method Not Allowed"


def test_the_served_datasets_follow_the_policies_directory_but_not_a_broken_edit(tmp_path, caplog):
    from syncer.policy import load_policies
    from tests.support import write_policy

    def datasets(app):
        return [dataset["name"] for dataset in json.loads(call(app, "GET", "/api/status")[2])["datasets"]]

    for name in ("docs", "mail"):
        (tmp_path / name).mkdir()
    write_policy(tmp_path / "p", "docs", {"path": str(tmp_path / "docs"),
                                          "authority": {"type": "local", "path": str(tmp_path / "docs")}})
    StateDB(tmp_path / "state").close()
    app = StatusApp(load_policies(tmp_path / "p"), tmp_path / "state", policies_dir=tmp_path / "p")
    assert datasets(app) == ["docs"]
    write_policy(tmp_path / "p", "mail", {"path": str(tmp_path / "mail"),
                                          "authority": {"type": "local", "path": str(tmp_path / "mail")}})
    assert datasets(app) == ["docs", "mail"]  # added while serving: shown without a restart
    (tmp_path / "p" / "mail.yaml").write_text("path: [unclosed\n")
    with caplog.at_level(logging.ERROR, logger="syncer"):
        assert datasets(app) == ["docs", "mail"]  # a half-written save: the last good set stays
    assert "mail.yaml" in caplog.text and "not shown" in caplog.text
    (tmp_path / "p" / "mail.yaml").unlink()
    assert datasets(app) == ["docs"]
