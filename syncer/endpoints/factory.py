"""Build the endpoint a policy names, with its credentials."""

from syncer.errors import UsageError
from syncer.policy.credentials import read_credentials
from syncer.policy.schema import CREDENTIAL_KEYS


def build_endpoint(policy):
    """Return the endpoint of `policy.authority`. Raise CredentialError when its
    credentials file is missing, too open or incomplete."""
    authority = policy.authority
    credentials = {}
    if authority.credentials:
        credentials = read_credentials(authority.credentials, CREDENTIAL_KEYS[authority.type])
    if authority.type == "local":
        from syncer.endpoints.local import LocalEndpoint

        return LocalEndpoint(authority.get("path"), policy.exclude)
    if authority.type == "s3":
        from syncer.endpoints.s3 import S3Endpoint

        return S3Endpoint(authority.get("bucket"), authority.get("prefix", ""), credentials,
                          authority.get("endpoint_url"), authority.get("region"),
                          credentials_file=authority.credentials)
    raise UsageError(f"{policy.file_label}: authority.type: {authority.type} is not supported yet")
