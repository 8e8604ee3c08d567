"""Build the endpoint a policy names, with its credentials."""

from syncer.endpoints.bunnycdn import BunnyEndpoint
from syncer.endpoints.dnsimple import DNSimpleEndpoint
from syncer.endpoints.gitlab import GitLabEndpoint
from syncer.endpoints.local import LocalEndpoint
from syncer.endpoints.s3 import S3Endpoint
from syncer.endpoints.smugmug import SmugMugEndpoint
from syncer.endpoints.wrappers import DryRunEndpoint, DryRunMirrors, LimitedEndpoint, RetryingEndpoint, RetryingMirrors
from syncer.errors import UsageError
from syncer.policy.credentials import read_credentials
from syncer.policy.model import S3Authority

DEFAULT_CONCURRENCY = 4
ENDPOINT_CLASSES = {"local": LocalEndpoint, "s3": S3Endpoint, "smugmug": SmugMugEndpoint, "bunnycdn": BunnyEndpoint,
                    "gitlab": GitLabEndpoint, "dnsimple": DNSimpleEndpoint}


def checksum_algorithm(authority_type):
    """Return the algorithm of the native checksum of `authority_type` ("sha256" when the
    service has none). It is a constant of the endpoint's class: nothing is built and no
    credentials file is read, so push and the watcher work without the service's keys."""
    return ENDPOINT_CLASSES[authority_type].capabilities.checksum or "sha256"


def build_endpoint(policy, dry_run=False, concurrency=None, retry=None):
    """Return the endpoint of `policy.authority`, wrapped with retry (backoff honouring
    Retry-After), a concurrency limit and, with `dry_run`, writes turned into log lines.
    `retry` overrides RetryingEndpoint's settings (attempts, base_delay, ...). Raise
    CredentialError when its credentials file is missing, too open or incomplete."""
    return wrap_endpoint(build_raw_endpoint(policy), dry_run, concurrency, retry)


def wrap_endpoint(raw, dry_run=False, concurrency=None, retry=None):
    """Compose the cross-cutting wrappers around a bare endpoint (the one place that does).
    Repositories are not limited here: pull and restore run as many git commands at once
    as they are configured to."""
    if raw.capabilities.repositories:
        endpoint = RetryingMirrors(raw, **(retry or {}))
        return DryRunMirrors(endpoint) if dry_run else endpoint
    endpoint = RetryingEndpoint(raw, **(retry or {}))
    endpoint = LimitedEndpoint(endpoint, concurrency or DEFAULT_CONCURRENCY)
    return DryRunEndpoint(endpoint) if dry_run else endpoint


def build_s3_target(url, credentials_file=None, endpoint_url=None, dry_run=False, concurrency=None):
    """Return a wrapped S3 endpoint for `url` (s3://BUCKET/PREFIX), with the keys of
    `credentials_file` (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY). Raise UsageError for
    a malformed URL, CredentialError for a bad credentials file."""
    from pathlib import Path

    bucket, _, prefix = url[len("s3://"):].partition("/") if url.startswith("s3://") else ("", "", "")
    if not bucket:
        raise UsageError(f"--to {url}: expected s3://BUCKET/PREFIX")
    credentials = read_credentials(Path(credentials_file), S3Authority.credential_keys) if credentials_file else {}
    raw = S3Endpoint(bucket, prefix, credentials, endpoint_url, credentials_file=credentials_file)
    return wrap_endpoint(raw, dry_run, concurrency)


def build_raw_endpoint(policy):
    """Return the bare endpoint of `policy.authority` (no wrappers)."""
    authority = policy.authority
    credentials = {}
    if authority.credentials:
        credentials = read_credentials(authority.credentials, authority.credential_keys)
    if authority.type == "local":
        return LocalEndpoint(authority.path)
    if authority.type == "s3":
        return S3Endpoint(authority.bucket, authority.prefix, credentials, authority.endpoint_url, authority.region,
                          credentials_file=authority.credentials)
    if authority.type == "smugmug":
        return SmugMugEndpoint(credentials, authority.nickname, authority.albums, authority.api_url,
                               authority.upload_url, credentials_file=authority.credentials)
    if authority.type == "bunnycdn":
        return BunnyEndpoint(authority.zone, credentials.get("BUNNY_ACCESS_KEY"), authority.path, authority.endpoint,
                             credentials_file=authority.credentials)
    if authority.type == "gitlab":
        return GitLabEndpoint(authority.url, authority.groups, credentials.get("GITLAB_TOKEN"),
                              authority.include_subgroups, credentials_file=authority.credentials)
    if authority.type == "dnsimple":
        return DNSimpleEndpoint(credentials.get("DNSIMPLE_TOKEN"), authority.account, authority.zones,
                                authority.api_url, credentials_file=authority.credentials)
    raise UsageError(f"{policy.file_label}: authority.type: {authority.type} is not supported yet")
