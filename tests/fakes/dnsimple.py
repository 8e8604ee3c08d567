"""A loopback DNSimple API v2, per shared/reference/cloud-apis.md (DNSimple section).

`Authorization: Bearer <token>`; every answer is an envelope `{"data": ...}`, lists add
`pagination` {current_page, per_page (default 30, max 100), total_entries, total_pages}
and no Link header; every answer carries X-RateLimit-Limit/Remaining/Reset (epoch
seconds) and one over the budget is a 429. A zone starts with its system records (the
apex SOA, whose serial moves on every edit, and the apex NS); they cannot be created,
changed or deleted (400). Errors are `{"message": ...}` (401 "Authentication failed",
404 "Zone `x` not found", 400 "Validation failed" with `errors`). `GET .../file` exports
the zone file. Hostile shapes for tests: `add_raw_zone` takes any name, `endless`
zones answer every records page with one more page to come.
"""

import json
import time
from datetime import UTC, datetime
from urllib.parse import unquote

from tests.fakes.http import FakeServer, Response, json_response

TOKEN = "fake-dnsimple-account-token-0001"
ACCOUNT = {"id": 1010, "email": "ops@example.com", "plan_identifier": "teams-v1-monthly",
           "created_at": "2014-05-19T14:20:32Z", "updated_at": "2016-01-19T11:53:30.123Z"}
EDITABLE = ("name", "content", "ttl", "priority", "regions")


def credentials_text(token=TOKEN):
    return f"DNSIMPLE_TOKEN={token}\n"


def now_text(milliseconds=False):
    stamp = datetime.now(UTC)
    return stamp.strftime("%Y-%m-%dT%H:%M:%S") + (f".{stamp.microsecond // 1000:03d}" if milliseconds else "") + "Z"


class FakeDNSimple(FakeServer):
    def __init__(self, token=TOKEN, account=ACCOUNT, user_token=False):
        super().__init__()
        self.token = token
        self.account = dict(account)
        self.user_token = user_token  # whoami answers a user and no account; /v2/accounts lists them
        self.zones = {}  # name -> zone dict with "records": {id: record} and "serial"
        self.next_id = 1
        self.endless = set()  # zone names whose records pages never end
        self.endless_zones = False  # the zones listing says one more page is always to come
        self.rate_limit, self.remaining, self.reset_at = 2400, 2400, int(time.time()) + 3600
        self.writes = []  # (method, zone, record id or None) of every accepted write
        self.over_budget = 0  # 429s answered because the budget was used up

    # --- the service's own side (what tests seed and inspect) --------------------------

    def new_id(self):
        with self.lock:
            self.next_id += 1
            return self.next_id

    def add_zone(self, name):
        """A zone with DNSimple's system records: the apex SOA and NS."""
        zone = self.add_raw_zone(name)
        self.put_record(name, {"name": "", "type": "SOA", "content": self.soa_content(zone), "ttl": 3600,
                               "priority": None, "regions": ["global"], "system_record": True})
        for server in ("ns1.dnsimple.com", "ns2.dnsimple-edge.net"):
            self.put_record(name, {"name": "", "type": "NS", "content": server, "ttl": 3600, "priority": None,
                                   "regions": ["global"], "system_record": True})
        return zone

    def add_raw_zone(self, name):
        """A zone named `name` whatever it is (a '/', '..'), without records."""
        stamp = now_text()
        zone = {"id": self.new_id(), "account_id": self.account["id"], "name": name, "reverse": False,
                "secondary": False, "active": True, "created_at": stamp, "updated_at": stamp, "records": {},
                "serial": 1}
        with self.lock:
            self.zones[name] = zone
        return zone

    def soa_content(self, zone):
        return f"ns1.dnsimple.com admin.dnsimple.com {zone['serial']} 86400 7200 604800 300"

    def bump_serial(self, zone):
        zone["serial"] += 1
        for record in zone["records"].values():
            if record["type"] == "SOA":
                record["content"] = self.soa_content(zone)
                record["updated_at"] = now_text(milliseconds=True)

    def put_record(self, zone_name, fields):
        """Add a record as the service would hold it; return it."""
        zone = self.zones[zone_name]
        stamp = now_text()
        record = {"id": self.new_id(), "zone_id": zone_name, "parent_id": None, "name": "", "content": "",
                  "ttl": 3600, "priority": None, "type": "A", "regions": ["global"], "system_record": False,
                  "created_at": stamp, "updated_at": stamp}
        record.update(fields)
        with self.lock:
            zone["records"][record["id"]] = record
        return record

    def add_record(self, zone_name, name, type, content, ttl=3600, priority=None, regions=("global",)):
        record = self.put_record(zone_name, {"name": name, "type": type, "content": content, "ttl": ttl,
                                             "priority": priority, "regions": list(regions)})
        self.bump_serial(self.zones[zone_name])
        return record

    def find(self, zone_name, name, type, content=None):
        return [record for record in self.zones[zone_name]["records"].values()
                if record["name"] == name and record["type"] == type and content in (None, record["content"])]

    def records(self, zone_name, system=False):
        """{(name, type, content): (ttl, priority, regions)} of the zone's records."""
        return {(r["name"], r["type"], r["content"]): (r["ttl"], r["priority"], r["regions"])
                for r in self.zones[zone_name]["records"].values() if r["system_record"] == system}

    def zone_file(self, zone):
        origin = zone["name"].rstrip(".") + "."
        lines = [f"$ORIGIN {origin}", "$TTL 1h"]
        for record in sorted(zone["records"].values(), key=lambda record: record["id"]):
            owner = f"{record['name']}.{origin}" if record["name"] else origin
            content = record["content"]
            if record["priority"] is not None:
                content = f"{record['priority']} {content}"
            lines.append(f"{owner} {record['ttl']} IN {record['type']} {content}")
        return "\n".join(lines) + "\n"

    # --- the wire ---------------------------------------------------------------------

    def error_body(self, status):
        return {"message": {401: "Authentication failed", 429: "API rate limit exceeded"}.get(status, "Error")}

    def rate_headers(self):
        return {"X-RateLimit-Limit": str(self.rate_limit), "X-RateLimit-Remaining": str(max(0, self.remaining)),
                "X-RateLimit-Reset": str(self.reset_at)}

    def injected(self, request):
        response = super().injected(request)
        if response is not None:
            response.headers.update({key: value for key, value in self.rate_headers().items()
                                     if key not in response.headers})
        return response

    def handle(self, request):
        with self.lock:
            if time.time() >= self.reset_at:
                self.remaining, self.reset_at = self.rate_limit, int(time.time()) + 3600
            if self.remaining <= 0:
                self.over_budget += 1
                return json_response({"message": "API rate limit exceeded"}, 429, self.rate_headers())
            self.remaining -= 1
            headers = self.rate_headers()
        if request.headers.get("Authorization") != f"Bearer {self.token}":
            return json_response({"message": "Authentication failed"}, 401, headers)
        # Split before unquoting: a zone name holding '/' arrives as %2F inside one segment.
        parts = [unquote(part) for part in request.path.split("/")[1:]]
        with self.lock:
            status, body = self.route(request, parts)
        return Response(204, b"", headers) if status == 204 else json_response(body, status, headers)

    def route(self, request, parts):
        method = request.method
        if parts[:1] != ["v2"]:
            return 404, {"message": "Not found"}
        rest = parts[1:]
        if rest == ["whoami"] and method == "GET":
            if self.user_token:
                return 200, {"data": {"user": {"id": 7, "email": "someone@example.com"}, "account": None}}
            return 200, {"data": {"user": None, "account": self.account}}
        if rest == ["accounts"] and method == "GET":
            return 200, {"data": [self.account]}
        if not rest or rest[0] != str(self.account["id"]):
            return 404, {"message": f"Account `{rest[0] if rest else ''}` not found"}
        rest = rest[1:]
        if rest == ["zones"] and method == "GET":
            zones = [self.public_zone(zone) for zone in sorted(self.zones.values(), key=lambda zone: zone["id"])]
            answer = self.page(zones, request.query)
            if self.endless_zones:
                answer["pagination"]["total_pages"] = answer["pagination"]["current_page"] + 1
                answer["data"] = zones[:1]
            return 200, answer
        if len(rest) < 2 or rest[0] != "zones":
            return 404, {"message": "Not found"}
        zone = self.zones.get(rest[1])
        if zone is None:
            return 404, {"message": f"Zone `{rest[1]}` not found"}
        tail = rest[2:]
        if not tail and method == "GET":
            return 200, {"data": self.public_zone(zone)}
        if tail == ["file"] and method == "GET":
            return 200, {"data": {"zone": self.zone_file(zone)}}
        if tail == ["records"] and method == "GET":
            return self.list_records(zone, request.query)
        if tail == ["records"] and method == "POST":
            return self.create_record(zone, request)
        if len(tail) == 2 and tail[0] == "records":
            record = zone["records"].get(int(tail[1])) if tail[1].isdigit() else None
            if record is None:
                return 404, {"message": f"Record `{tail[1]}` not found"}
            if method == "GET":
                return 200, {"data": record}
            if record["system_record"] and method in ("PATCH", "DELETE"):
                return 400, {"message": "System records cannot be changed"}
            if method == "PATCH":
                return self.update_record(zone, record, request)
            if method == "DELETE":
                del zone["records"][record["id"]]
                self.bump_serial(zone)
                self.writes.append(("DELETE", zone["name"], record["id"]))
                return 204, None
        return 405, {"message": "Method not allowed"}

    def public_zone(self, zone):
        return {key: value for key, value in zone.items() if key not in ("records", "serial")}

    def page(self, items, query):
        try:
            page = max(1, int(query.get("page", "1")))
            per_page = min(100, max(1, int(query.get("per_page", "30"))))
        except ValueError:
            page, per_page = 1, 30
        pages = max(1, -(-len(items) // per_page))
        return {"data": items[(page - 1) * per_page:page * per_page],
                "pagination": {"current_page": page, "per_page": per_page, "total_entries": len(items),
                               "total_pages": pages}}

    def list_records(self, zone, query):
        if zone["name"] in self.endless:
            page = int(query.get("page", "1"))
            record = {"id": 10**6 + page, "zone_id": zone["name"], "parent_id": None, "name": f"r{page}",
                      "content": "192.0.2.1", "ttl": 60, "priority": None, "type": "A", "regions": ["global"],
                      "system_record": False, "created_at": now_text(), "updated_at": now_text()}
            return 200, {"data": [record], "pagination": {"current_page": page, "per_page": 1,
                                                          "total_entries": page + 1, "total_pages": page + 1}}
        records = sorted(zone["records"].values(), key=lambda record: record["id"])
        for key in ("name", "type"):
            if key in query:
                records = [record for record in records if record[key] == query[key]]
        if "name_like" in query:
            records = [record for record in records if query["name_like"] in record["name"]]
        return 200, self.page(records, query)

    def body_of(self, request):
        try:
            document = json.loads(request.body or b"{}")
        except ValueError:
            return None
        return document if isinstance(document, dict) else None

    def create_record(self, zone, request):
        document = self.body_of(request)
        if document is None:
            return 400, {"message": "Invalid JSON"}
        if document.get("type") in ("SOA",) or (document.get("type") == "NS" and not document.get("name")):
            return 400, {"message": "System records cannot be created"}
        problems = self.validate(document, creating=True)
        if problems:
            return 400, {"message": "Validation failed", "errors": problems}
        record = self.put_record(zone["name"], {key: document[key] for key in ("type", *EDITABLE) if key in document})
        self.bump_serial(zone)
        self.writes.append(("POST", zone["name"], record["id"]))
        return 201, {"data": record}

    def update_record(self, zone, record, request):
        document = self.body_of(request)
        if document is None:
            return 400, {"message": "Invalid JSON"}
        if "type" in document and document["type"] != record["type"]:
            return 400, {"message": "Validation failed", "errors": {"type": ["cannot be changed"]}}
        problems = self.validate(document, creating=False)
        if problems:
            return 400, {"message": "Validation failed", "errors": problems}
        record.update({key: document[key] for key in EDITABLE if key in document})
        record["updated_at"] = now_text(milliseconds=True)
        self.bump_serial(zone)
        self.writes.append(("PATCH", zone["name"], record["id"]))
        return 200, {"data": record}

    def validate(self, document, creating):
        problems = {}
        if creating and not document.get("type"):
            problems["type"] = ["can't be blank"]
        if (creating or "content" in document) and not document.get("content"):
            problems["content"] = ["can't be blank"]
        if "ttl" in document and not (isinstance(document["ttl"], int) and document["ttl"] > 0):
            problems["ttl"] = ["must be a positive number"]
        if "regions" in document and not isinstance(document["regions"], list):
            problems["regions"] = ["must be a list"]
        return problems

