"""A DNSimple account's DNS zones as the authoritative copy: two entries per zone.

- `<zone>.json`: the zone's records as one canonical JSON document
  `{"zone", "records", "system_records"}`; each record has exactly the fields name
  ("" = apex), type, content, ttl, priority and regions (sorted), no ids or timestamps,
  and both lists are sorted by (name, type, content). `system_records` holds what
  DNSimple manages itself (`system_record: true`: the apex SOA and NS): kept, never
  compared, never written.
- `<zone>.zone`: the zone file as DNSimple exports it (GET .../file), the portable
  artefact another DNS provider can load. It follows the records: it is never written.

Checksums (ZoneDocuments.digest, the same function on both sides, on the same bytes):
a `.json` digests to the SHA-256 of the compact JSON of its `records` list alone, in
canonical form (`json.dumps(records, sort_keys=True, separators=(",", ":"),
ensure_ascii=False)`, UTF-8), so the system records, and with them the SOA serial that
moves on every edit, are outside it; a `.zone` digests to the SHA-256 of the export's
non-blank lines, stripped and sorted (the records' order is the service's, not the
zone's: recreated records come back in another), with the SOA's serial read as 0.
The listing renders both documents from the API and digests them; the local files
are digested by the same function, so a new serial never counts as a change and a changed record always does.

Writing `<zone>.json` brings the zone's records to the document's: missing records are
created, those with the same (name, type, content) and another ttl, priority or
regions are updated, those not in the document are deleted (a restore without
--delete hands a document that keeps them: syncer.actions.restore_cloud). The zone
must exist; system records are never written. Zone names and records come from the
service and are checked (a plain DNS name, bounded sizes, a bounded number of pages)
before anything is named or written after them.
"""

import hashlib
import io
import json
import re
from fnmatch import fnmatchcase
from urllib.parse import quote

from syncer.endpoints.base import Capabilities, Entry, check_relative_path
from syncer.endpoints.http import NotFound, RateBudget, send
from syncer.errors import EndpointError

DEFAULT_API = "https://api.dnsimple.com"
PER_PAGE = 100  # the API's maximum
MAX_PAGES = 500  # 50,000 zones or records of one zone; a listing that goes on is refused, not followed
MAX_CONTENT = 65535  # bytes of one record's content (a DNS record's data cannot be longer)
MAX_DOCUMENT = 32 * 2**20  # bytes of one rendered document or export
MAX_ANSWER = 16 * 2**20  # bytes of one answer (a page of 100 records of the longest content is 6.4 MiB)
ZONE_NAME = re.compile(r"[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*\.?")
FIELDS = ("name", "type", "content", "ttl", "priority", "regions")
SHOWN_DIFFERENCES = 10
SHOWN_CONTENT = 80
SOA_SERIAL = re.compile(r"(\sSOA\s+\S+\s+\S+\s+\(?\s*)\d+")


class ZoneProblem(ValueError):
    """A zone's records or document cannot be used (wrong shape, too large)."""


class AnswerTooLarge(EndpointError):
    """The service sent more than MAX_ANSWER bytes for one request."""

    def __init__(self, where, reason):
        super().__init__(f"{where}: {reason}", permanent=True)
        self.reason = reason


def unsafe_zone_name(name):
    """Return why a zone name from the service cannot name local files, or None."""
    if not isinstance(name, str) or not ZONE_NAME.fullmatch(name) or len(name) > 253:
        return "not a plain DNS name (letters, digits, '-', '_' and single dots)"
    return check_relative_path(f"{name}.json")


def canonical_record(record):
    """Return the record's compared fields, checked; raise ZoneProblem for a wrong shape."""
    name, kind, content = record.get("name"), record.get("type"), record.get("content")
    ttl, priority, regions = record.get("ttl"), record.get("priority"), record.get("regions")
    if not (isinstance(name, str) and isinstance(kind, str) and kind and isinstance(content, str)):
        raise ZoneProblem("a record without a string name, type and content")
    if len(content.encode("utf-8", "surrogatepass")) > MAX_CONTENT:
        raise ZoneProblem(f"a record's content is longer than {MAX_CONTENT} bytes")
    if len(name) > 253 or len(kind) > 16:
        raise ZoneProblem("a record's name or type is too long")
    if type(ttl) is not int or not (priority is None or type(priority) is int):
        raise ZoneProblem(f"record {name or '@'} {kind}: ttl and priority must be numbers")
    regions = ["global"] if regions is None else regions
    if not isinstance(regions, list) or not all(isinstance(region, str) for region in regions):
        raise ZoneProblem(f"record {name or '@'} {kind}: regions must be a list of names")
    return {"name": name, "type": kind, "content": content, "ttl": ttl, "priority": priority,
            "regions": sorted(regions)}


def record_key(record):
    return record["name"], record["type"], record["content"]


def sorted_records(records):
    return sorted(records, key=lambda record: (record_key(record), json.dumps(record, sort_keys=True)))


def render_document(zone, records):
    """Return the canonical `<zone>.json` bytes of the API's `records` (dicts)."""
    ours, system = [], []
    for record in records:
        if not isinstance(record, dict):
            raise ZoneProblem("a record that is not an object")
        (system if record.get("system_record") is True else ours).append(canonical_record(record))
    data = dump_document(zone, sorted_records(ours), sorted_records(system))
    if len(data) > MAX_DOCUMENT:
        raise ZoneProblem(f"the zone's records take more than {MAX_DOCUMENT >> 20} MiB")
    return data


def dump_document(zone, records, system_records):
    """Return the bytes of a `<zone>.json`: one record per line, its fields in FIELDS
    order, so that the file reads (and diffs) as a list of records."""
    def listed(items):
        if not items:
            return "[]"
        return "[\n" + ",\n".join("  " + json.dumps(item, ensure_ascii=False) for item in items) + "\n ]"

    return (f'{{\n "zone": {json.dumps(zone, ensure_ascii=False)},\n "records": {listed(records)},\n'
            f' "system_records": {listed(system_records)}\n}}\n').encode("utf-8", "surrogatepass")


def parse_document(data):
    """Return the canonical records of a `<zone>.json` document; raise ZoneProblem."""
    try:
        document = json.loads(data)
    except (ValueError, UnicodeDecodeError) as error:
        raise ZoneProblem(f"not JSON ({error})")
    if not isinstance(document, dict) or not isinstance(document.get("records"), list):
        raise ZoneProblem("not a zone document (no `records` list)")
    return sorted_records(canonical_record(record) if isinstance(record, dict) else canonical_record({})
                          for record in document["records"])


def records_digest(records):
    text = json.dumps(records, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def describe_record(record, with_ttl=True):
    """`www A 192.0.2.7 ttl 600`; an MX or SRV shows its priority before the content,
    a long content (a DKIM key) is cut at SHOWN_CONTENT characters."""
    priority = f"{record['priority']} " if record["priority"] is not None else ""
    content = record["content"]
    content = content if len(content) <= SHOWN_CONTENT else content[:SHOWN_CONTENT] + "..."
    text = f"{record['name'] or '@'} {record['type']} {priority}{content}"
    return text + f" ttl {record['ttl']}" if with_ttl else text


def plan_records(wanted, current):
    """Return (create, update, delete) that bring `current` records to `wanted` ones:
    records to create, (current record, changed fields) pairs, records to delete. A
    record is the same one when its (name, type, content) is."""
    present = {}
    for record in current:
        present.setdefault(record_key(record), []).append(record)
    create, update = [], []
    for record in wanted:
        same = present.get(record_key(record))
        if not same:
            create.append(record)
            continue
        found = same.pop(0)
        changed = {field: record[field] for field in ("ttl", "priority", "regions")
                   if record[field] != canonical_record(found)[field]}
        if changed:
            update.append((found, changed))
    delete = [record for records in present.values() for record in records]
    return create, update, delete


def creation(record):
    """The body of a record's creation. The defaults (no priority, every region) are
    left out: an account without regional records may refuse `regions`."""
    body = {field: record[field] for field in FIELDS}
    if body["priority"] is None:
        del body["priority"]
    if body["regions"] == ["global"]:
        del body["regions"]
    return body


def summarize(lines):
    """Join up to SHOWN_DIFFERENCES lines with '; ', then count the rest."""
    shown = "; ".join(lines[:SHOWN_DIFFERENCES])
    return shown + (f"; and {len(lines) - SHOWN_DIFFERENCES} more" if len(lines) > SHOWN_DIFFERENCES else "")


def change_lines(create, update, delete, words=("+", "~", "-")):
    lines = [f"{words[0]} {describe_record(record)}" for record in create]
    for found, changed in update:
        found = canonical_record(found)
        details = ", ".join(f"{field} {found[field]} -> {value}" if field != "regions" else
                            f"regions {','.join(found[field])} -> {','.join(value)}"
                            for field, value in changed.items())
        lines.append(f"{words[1]} {describe_record(found, with_ttl=False)} {details}")
    lines += [f"{words[2]} {describe_record(canonical_record(record), with_ttl=False)}" for record in delete]
    return lines


class ZoneDocuments:
    """The zone documents' format (syncer.endpoints.base.Documents): see the module's docstring."""

    def digest(self, path, data):
        if path.endswith(".json"):
            try:
                return records_digest(parse_document(data))
            except ZoneProblem:
                # Never the digest of a records list: a damaged file differs from every zone.
                return hashlib.sha256(b"not a zone document\x00" + data).hexdigest()
        if path.endswith(".zone"):
            text = SOA_SERIAL.sub(r"\g<1>0", data.decode("utf-8", "surrogateescape"), count=1)
            lines = sorted(line.strip() for line in text.splitlines() if line.strip())
            return hashlib.sha256("\n".join(lines).encode("utf-8", "surrogateescape")).hexdigest()
        return hashlib.sha256(data).hexdigest()

    def difference(self, path, here, there):
        """`+` a record only the service has, `-` one only we have, `~` one whose ttl,
        priority or regions differ (ours -> the service's); up to 10, then a count."""
        if not path.endswith(".json"):
            return "the zone file differs (the SOA serial aside)" if path.endswith(".zone") else None
        try:
            ours = parse_document(here)
        except ZoneProblem as problem:
            return f"the local file is {problem}"
        try:
            theirs = parse_document(there)
        except ZoneProblem as problem:
            return f"the service's zone is {problem}"
        create, update, delete = plan_records(theirs, ours)
        return summarize(change_lines(create, update, delete)) or None

    def writable(self, path):
        return path.endswith(".json")

    def merge(self, path, ours, theirs):
        wanted, current = parse_document(ours), parse_document(theirs)
        document = json.loads(ours)
        _create, _update, only_theirs = plan_records(wanted, current)
        if not only_theirs:
            return ours, None
        system = document.get("system_records") if isinstance(document.get("system_records"), list) else []
        kept = summarize([describe_record(record) for record in only_theirs])
        return dump_document(str(document.get("zone", "")), sorted_records(wanted + only_theirs), system), kept

    def plan(self, path, wanted, there):
        create, update, delete = plan_records(parse_document(wanted), parse_document(there))
        return summarize(change_lines(create, update, delete, ("create", "update", "delete"))) or None


ZONE_DOCUMENTS = ZoneDocuments()


class DNSimpleEndpoint:
    capabilities = Capabilities(
        checksum="sha256", can_delete=False, documents=ZONE_DOCUMENTS,
        reason="DNSimple holds zones of records, not files: a zone is written as a whole document (<zone>.json), "
               "record by record, and syncer never deletes a zone")

    def __init__(self, token, account=None, zones=(), api_url=None, credentials_file=None):
        import requests

        self.account = str(account) if account else None
        self.zones = [str(pattern).lower() for pattern in zones]
        self.api_url = (api_url or DEFAULT_API).rstrip("/")
        self.credentials_file = credentials_file
        self.budget = RateBudget()
        self.session = requests.Session()
        self.session.headers.update({"Authorization": f"Bearer {token or ''}", "Accept": "application/json"})

    def describe(self):
        where = f"dnsimple:{self.account}" if self.account else "dnsimple"
        where += f" ({', '.join(self.zones)})" if self.zones else ""
        return where if self.api_url == DEFAULT_API else f"{where} at {self.api_url}"

    def _credential_hint(self):
        where = f" in {self.credentials_file}" if self.credentials_file else ""
        return f"DNSIMPLE_TOKEN{where} (an account token)"

    # --- the API ------------------------------------------------------------------------

    def _request(self, method, path, **arguments):
        return send(self.session, method, self.api_url + path, self.describe(), self._credential_hint(),
                    budget=self.budget, **arguments)

    def _data(self, method, path, **arguments):
        """Return the `data` and `pagination` of the envelope the API answers, and the
        answer's size. Raise AnswerTooLarge past MAX_ANSWER bytes (never held whole)."""
        import urllib3

        response = self._request(method, path, stream=True, **arguments)
        try:
            body = response.raw.read(MAX_ANSWER + 1, decode_content=True)
        except (OSError, urllib3.exceptions.HTTPError) as error:
            raise EndpointError(f"{self.describe()}: {path}: the answer broke off ({error.__class__.__name__})")
        finally:
            response.close()
        if len(body) > MAX_ANSWER:
            raise AnswerTooLarge(f"{self.describe()}: {path}", f"an answer larger than {MAX_ANSWER >> 20} MiB")
        try:
            document = json.loads(body)
        except ValueError:
            raise EndpointError(f"{self.describe()}: {path}: the answer is not JSON")
        if not isinstance(document, dict) or "data" not in document:
            raise EndpointError(f"{self.describe()}: {path}: the answer has no `data`", permanent=True)
        return document["data"], document.get("pagination"), len(body)

    def _pages(self, path, what, **params):
        """Return every item of a paged list, following `total_pages` (at most MAX_PAGES)."""
        items, size = [], 0
        for page in range(1, MAX_PAGES + 1):
            data, pagination, answer = self._data("GET", path, params={**params, "page": page, "per_page": PER_PAGE})
            if not isinstance(data, list):
                raise ZoneProblem(f"the list of {what} is not a list")
            size += answer
            if size > 2 * MAX_DOCUMENT:
                raise ZoneProblem(f"the list of {what} takes more than {2 * MAX_DOCUMENT >> 20} MiB")
            items += data
            total = pagination.get("total_pages") if isinstance(pagination, dict) else None
            if not data or type(total) is not int or page >= total:
                return items
        raise ZoneProblem(f"the list of {what} goes on past {MAX_PAGES} pages")

    def _whoami(self):
        data, _, _ = self._data("GET", "/v2/whoami")
        if not isinstance(data, dict):
            raise EndpointError(f"{self.describe()}: /v2/whoami: no account or user", permanent=True)
        return data.get("account") if isinstance(data.get("account"), dict) else None, \
            data.get("user") if isinstance(data.get("user"), dict) else None

    def _account_id(self):
        """The configured account, else the token's own; a user token with one account uses it."""
        if self.account:
            return self.account
        account, _user = self._whoami()
        if account is None:
            accounts, _, _ = self._data("GET", "/v2/accounts")
            ids = [str(item.get("id")) for item in accounts or () if isinstance(item, dict)]
            if len(ids) != 1:
                raise EndpointError(f"{self.describe()}: the token is a user token with {len(ids)} accounts; "
                                    f"set authority.account to one of: {', '.join(ids) or 'none'}", permanent=True)
            account = {"id": ids[0]}
        self.account = str(account.get("id"))
        return self.account

    def check_access(self):
        account, user = self._whoami()
        if account is not None:
            if self.account and str(account.get("id")) != self.account:
                raise EndpointError(f"{self.describe()}: the token is account {account.get('id')}'s, not account "
                                    f"{self.account}'s; check authority.account and {self._credential_hint()}",
                                    permanent=True)
            return f"account {account.get('id')} ({account.get('email')})"
        return f"user {user.get('email') if user else 'unknown'}"

    # --- the contract -------------------------------------------------------------------

    def _wanted(self, name):
        return not self.zones or any(fnmatchcase(name.lower(), pattern) for pattern in self.zones)

    def list_entries(self):
        account = self._account_id()
        try:
            zones = self._pages(f"/v2/{account}/zones", "zones")
        except ZoneProblem as problem:
            raise EndpointError(f"{self.describe()}: {problem}", permanent=True)
        names = sorted({str(zone.get("name")) for zone in zones if isinstance(zone, dict)})
        for name in names:
            if self._wanted(name):
                yield from self._zone_entries(account, name)

    def _zone_entries(self, account, name):
        paths = (f"{name}.json", f"{name}.zone")
        problem = unsafe_zone_name(name)
        if problem:
            for path in paths:
                yield Entry(path.replace("\x00", "?"), None, note=f"unsafe name: {problem}")
            return
        base = f"/v2/{account}/zones/{quote(name, safe='')}"
        try:
            document = render_document(name, self._pages(f"{base}/records", f"records of {name}"))
            export, _, _ = self._data("GET", f"{base}/file")
            text = export.get("zone") if isinstance(export, dict) else None
            if not isinstance(text, str) or len(text) > MAX_DOCUMENT:
                raise ZoneProblem("the zone file export is missing or too large")
        except (ZoneProblem, AnswerTooLarge) as problem:
            for path in paths:
                yield Entry(path, None, note=f"zone not usable: {getattr(problem, 'reason', problem)}")
            return
        zone_file = text.encode("utf-8", "surrogateescape")
        for path, data in zip(paths, (document, zone_file)):
            yield Entry(path, None, ZONE_DOCUMENTS.digest(path, data), "sha256", ref=data)

    def open_entry(self, entry):
        """The listing rendered the document already: reading it costs no request."""
        if not isinstance(entry.ref, bytes):
            raise EndpointError(f"{self.describe()}: {entry.path}: {entry.note or 'nothing to read'}", permanent=True)
        return io.BytesIO(entry.ref)

    def write_entry(self, path, source, digests):
        """Bring the zone `<zone>.json` names to the records of the document at `source`,
        whose digest must be digests["sha256"]; check the zone's digest afterwards."""
        zone = path[:-len(".json")] if path.endswith(".json") else ""
        where = f"{self.describe()}: {path}"
        if not ZONE_DOCUMENTS.writable(path) or unsafe_zone_name(zone):
            raise EndpointError(f"{where}: only a zone's records (<zone>.json) are written; the zone file export "
                                "follows them", permanent=True)
        with open(source, "rb") as stream:
            data = stream.read(MAX_DOCUMENT + 1)
        expected = digests.get("sha256")
        if len(data) > MAX_DOCUMENT or (expected and ZONE_DOCUMENTS.digest(path, data) != expected):
            raise EndpointError(f"{where}: the document does not match its checksum; nothing was written",
                                permanent=True)
        try:
            wanted = parse_document(data)
        except ZoneProblem as problem:
            raise EndpointError(f"{where}: {problem}; nothing was written", permanent=True)
        base = f"/v2/{self._account_id()}/zones/{quote(zone, safe='')}"
        create, update, delete = plan_records(wanted, self._current_records(base, zone, where))
        for record in create:
            self._data("POST", f"{base}/records", json=creation(record))
        for found, changed in update:
            self._data("PATCH", f"{base}/records/{found['id']}", json=changed)
        for record in delete:
            try:
                self._request("DELETE", f"{base}/records/{record['id']}")
            except NotFound:
                pass  # gone meanwhile: what deleting wanted
        digest = records_digest(sorted_records(canonical_record(record)
                                               for record in self._current_records(base, zone, where)))
        if digest != records_digest(wanted):
            raise EndpointError(f"{where}: after writing, the zone's records still differ from the document",
                                permanent=True)
        return Entry(path, None, digest, "sha256")

    def _current_records(self, base, zone, where):
        try:
            records = self._pages(f"{base}/records", f"records of {zone}")
        except NotFound:
            raise EndpointError(f"{where}: zone {zone} does not exist at DNSimple; add the zone there first "
                                "(syncer writes records, never zones)", permanent=True)
        except ZoneProblem as problem:
            raise EndpointError(f"{where}: {problem}", permanent=True)
        try:
            return [{**canonical_record(record), "id": record.get("id")} for record in records
                    if isinstance(record, dict) and record.get("system_record") is not True]
        except ZoneProblem as problem:
            raise EndpointError(f"{where}: {problem}", permanent=True)

    def delete_entry(self, path):
        raise EndpointError(f"{self.describe()}: {path}: syncer never deletes a DNS zone", permanent=True)
