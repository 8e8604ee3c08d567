"""The endpoint factory: what can be known about an authority without building its endpoint."""

from syncer.endpoints.factory import checksum_algorithm
from syncer.policy.model import AUTHORITY_TYPES


def test_the_checksum_algorithm_of_every_authority_type_is_known_without_credentials():
    assert {kind: checksum_algorithm(kind) for kind in AUTHORITY_TYPES} == {
        "local": "sha256", "s3": "md5", "smugmug": "md5", "bunnycdn": "sha256", "gitlab": "sha256",
        "dnsimple": "sha256"}
