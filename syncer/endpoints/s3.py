"""An S3-compatible bucket (or a prefix of one) as the authoritative copy, via boto3.

A single-part upload's ETag is the MD5 of the object; a multipart ETag ("hex-N") is
verified by recomputing it for the inferred part size, else by x-amz-checksum-*.
"""

import base64
import os

from syncer.endpoints.base import Capabilities, Entry, check_relative_path
from syncer.errors import AuthenticationError, EndpointError
from syncer.verdict import CHANGED, Copy, judge

AUTH_CODES = {"InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied", "InvalidToken",
              "ExpiredToken", "AuthorizationHeaderMalformed"}
PERMANENT_CODES = AUTH_CODES | {"NoSuchBucket", "NoSuchKey", "InvalidBucketName", "404", "403", "400",
                                  "BadDigest", "InvalidDigest", "XAmzContentSHA256Mismatch"}
# botocore's names for a broken connection, in the words a user needs.
# How long a request may wait for the server's next bytes (SYNCER_S3_READ_TIMEOUT).
READ_TIMEOUT_SECONDS = float(os.environ.get("SYNCER_S3_READ_TIMEOUT", "60"))
NETWORK_FAILURES = {
    "ConnectionClosedError": "the connection was reset before the answer was complete",
    "ResponseStreamingError": "the connection broke while the answer was being read",
    "IncompleteReadError": "the connection broke while the answer was being read",
    "ReadTimeoutError": f"no answer within the read timeout ({READ_TIMEOUT_SECONDS:g} s)",
    "ConnectTimeoutError": "the connection attempt timed out",
}


def make_client(credentials, endpoint_url=None, region=None, attempts=4):
    """Return a boto3 S3 client with explicit credentials (never the ambient ones) that
    makes at most `attempts` requests per call. S3Endpoint asks for one: its retry
    wrapper decides when to try again, and botocore's own retries would multiply its attempts."""
    import boto3
    from botocore.config import Config

    config = Config(connect_timeout=10, read_timeout=READ_TIMEOUT_SECONDS,
                    retries={"total_max_attempts": attempts, "mode": "standard"},
                    s3={"addressing_style": "path"} if endpoint_url else {})
    return boto3.client("s3", endpoint_url=endpoint_url, region_name=region or "us-east-1",
                        aws_access_key_id=credentials.get("AWS_ACCESS_KEY_ID"),
                        aws_secret_access_key=credentials.get("AWS_SECRET_ACCESS_KEY"),
                        aws_session_token=credentials.get("AWS_SESSION_TOKEN") or None, config=config)


def translate_error(error, where, credentials_file=None):
    """Turn a botocore exception into an EndpointError naming the endpoint."""
    from botocore.exceptions import BotoCoreError, ClientError, EndpointConnectionError

    if isinstance(error, ClientError):
        code = str(error.response.get("Error", {}).get("Code", "unknown"))
        if code in AUTH_CODES:
            hint = f" (check AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY in {credentials_file})" \
                if credentials_file else ""
            return AuthenticationError(f"{where}: the credentials were refused ({code}){hint}")
        status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        retry = status in (429, 500, 502, 503, 504) or code in ("SlowDown", "RequestTimeout")
        return EndpointError(f"{where}: {code}", permanent=not retry and code in PERMANENT_CODES)
    if isinstance(error, EndpointConnectionError):
        return EndpointError(f"{where}: cannot connect ({error.fmt.split(':')[0] if error.fmt else 'refused'})")
    if isinstance(error, BotoCoreError):
        name = error.__class__.__name__
        return EndpointError(f"{where}: {NETWORK_FAILURES[name]} ({name})" if name in NETWORK_FAILURES else
                             f"{where}: {name}")
    return EndpointError(f"{where}: {error}")


class S3Endpoint:
    capabilities = Capabilities(checksum="md5", head_sha256=True)

    def __init__(self, bucket, prefix="", credentials=None, endpoint_url=None, region=None,
                 credentials_file=None):
        self.bucket = bucket
        self.prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
        self.endpoint_url = endpoint_url
        self.credentials_file = credentials_file
        self.client = make_client(credentials or {}, endpoint_url, region, attempts=1)

    def describe(self):
        where = f"s3://{self.bucket}/{self.prefix}"
        return f"{where} at {self.endpoint_url}" if self.endpoint_url else where

    def _call(self, operation, **arguments):
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return operation(**arguments)
        except (ClientError, BotoCoreError) as error:
            raise translate_error(error, self.describe(), self.credentials_file) from None

    def check_access(self):
        """head_bucket: the cheapest request that proves the keys may reach the bucket."""
        self._call(self.client.head_bucket, Bucket=self.bucket)
        return f"bucket {self.bucket} reachable"

    def list_entries(self):
        from botocore.exceptions import BotoCoreError, ClientError

        paginator = self.client.get_paginator("list_objects_v2")
        try:
            for page in paginator.paginate(Bucket=self.bucket, Prefix=self.prefix):
                for item in page.get("Contents", []):
                    key = item["Key"]
                    if key.endswith("/"):
                        continue  # a "folder" marker, not data
                    yield self._entry_for(key, item["Size"], item.get("ETag", ""),
                                         item["LastModified"].timestamp())
        except (ClientError, BotoCoreError) as error:
            raise translate_error(error, self.describe(), self.credentials_file) from None

    def _entry_for(self, key, size, etag, mtime):
        path = key[len(self.prefix):]
        problem = check_relative_path(path)
        if problem:
            return Entry(path.replace("\x00", "?"), size, None, None, mtime, note=f"unsafe name: {problem}", ref=key)
        etag = etag.strip('"').lower()
        if "-" in etag:
            return Entry(path, size, etag, "etag", mtime, ref=key)
        if len(etag) == 32:
            return Entry(path, size, etag, "md5", mtime, ref=key)
        return Entry(path, size, None, None, mtime, note="ETag is not an MD5", ref=key)

    def head_sha256(self, path):
        """Return the object's x-amz-checksum-sha256 as hex if it has a full-object one."""
        answer = self._call(self.client.head_object, Bucket=self.bucket, Key=self.prefix + path, ChecksumMode="ENABLED")
        value = answer.get("ChecksumSHA256")
        if not value or "-" in value:
            return None
        return base64.b64decode(value).hex()

    def open_entry(self, entry):
        answer = self._call(self.client.get_object, Bucket=self.bucket, Key=entry.ref or self.prefix + entry.path)
        return answer["Body"]

    def write_entry(self, path, source, digests):
        arguments = {"Bucket": self.bucket, "Key": self.prefix + path}
        if digests.get("md5"):
            arguments["ContentMD5"] = base64.b64encode(bytes.fromhex(digests["md5"])).decode()
        with open(source, "rb") as body:
            answer = self._call(self.client.put_object, Body=body, **arguments)
        etag = str(answer.get("ETag", "")).strip('"').lower()
        if len(etag) == 32 and judge(Copy(digests=digests), Copy(digests={"md5": etag})).status == CHANGED:
            # Some S3-compatible servers ignore Content-MD5: the ETag still tells.
            self._call(self.client.delete_object, Bucket=self.bucket, Key=self.prefix + path)
            raise EndpointError(f"{self.describe()}: {path} arrived corrupted (ETag {etag} is not the file's MD5); "
                                "the object was removed", permanent=True)
        return Entry(path, os.path.getsize(source), digests.get("md5"), "md5")

    def delete_entry(self, path):
        self._call(self.client.delete_object, Bucket=self.bucket, Key=self.prefix + path)
