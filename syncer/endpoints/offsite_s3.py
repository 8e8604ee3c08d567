"""The S3 bucket under a restic repository, asked how well it resists deletion.

Only bucket settings are read (versioning, object lock, lifecycle). A field the
server does not return counts as "not configured": never assumed safe.
"""

from syncer.endpoints.s3 import make_client, translate_error

NOT_CONFIGURED_CODES = {
    "ObjectLockConfigurationNotFoundError", "NoSuchLifecycleConfiguration", "NoSuchObjectLockConfiguration",
    "InvalidRequest", "NotImplemented", "MethodNotAllowed",
}


def read_bucket_protection(endpoint_url, bucket, credentials, credentials_file=None):
    """Return {"versioning", "mfa_delete", "object_lock": {"enabled", "mode", "days", "years"},
    "lifecycle": [rules]} for `bucket`. Raise EndpointError when the bucket cannot be
    reached or the credentials are refused."""
    from botocore.exceptions import BotoCoreError, ClientError

    client = make_client(credentials, endpoint_url)
    where = f"s3 bucket {bucket} at {endpoint_url}"

    def ask(call, **arguments):
        try:
            return call(Bucket=bucket, **arguments)
        except ClientError as error:
            if str(error.response.get("Error", {}).get("Code")) in NOT_CONFIGURED_CODES:
                return {}
            raise translate_error(error, where, credentials_file)
        except BotoCoreError as error:
            raise translate_error(error, where, credentials_file)

    versioning = ask(client.get_bucket_versioning)
    lock = ask(client.get_object_lock_configuration).get("ObjectLockConfiguration") or {}
    retention = (lock.get("Rule") or {}).get("DefaultRetention") or {}
    lifecycle = ask(client.get_bucket_lifecycle_configuration).get("Rules") or []
    return {
        "versioning": versioning.get("Status") or "not configured",
        "mfa_delete": versioning.get("MFADelete") or "not configured",
        "object_lock": {"enabled": lock.get("ObjectLockEnabled") == "Enabled", "mode": retention.get("Mode"),
                        "days": retention.get("Days"), "years": retention.get("Years")},
        "lifecycle": [{"id": rule.get("ID"), "status": rule.get("Status"),
                       "noncurrent_days": (rule.get("NoncurrentVersionExpiration") or {}).get("NoncurrentDays"),
                       "expiration_days": (rule.get("Expiration") or {}).get("Days")} for rule in lifecycle],
    }
