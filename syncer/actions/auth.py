"""`syncer auth`: obtain an authority's credentials and keep them only once the service
accepted them. The file is staged beside the credentials file, checked with the
endpoint's check_access(), then renamed into place: a refused key leaves the file as
it was, never half-written."""

from syncer.errors import SyncerError
from syncer.policy.credentials import staged_credentials

QUICK_RETRY = {"attempts": 2, "base_delay": 0.5, "max_delay": 1.0, "max_wait": 5.0}
SMUGMUG_KEYS = ("SMUGMUG_API_KEY", "SMUGMUG_API_SECRET", "SMUGMUG_TOKEN", "SMUGMUG_TOKEN_SECRET")


def authorize_smugmug(credentials_file, api_url, api_key, api_secret, permissions, get_verifier):
    """Run SmugMug's OAuth 1.0a out-of-band flow: a request token, the authorize URL
    handed to get_verifier(url) which returns the code the user read, the access token,
    a check with `!authuser`; then write the four keys into `credentials_file` (mode 600,
    other lines kept). Return what the check reached ("user NICK").
    Raise AuthenticationError when the key, the secret or the verifier is refused."""
    from syncer.endpoints.smugmug import SmugMugEndpoint, access_token, request_token

    token, token_secret, url = request_token(api_key, api_secret, api_url, permissions)
    verifier = get_verifier(url)
    access, access_secret = access_token(api_key, api_secret, token, token_secret, verifier, api_url)
    values = dict(zip(SMUGMUG_KEYS, (api_key, api_secret, access, access_secret)))
    with staged_credentials(credentials_file, values):
        detail = SmugMugEndpoint(values, api_url=api_url, credentials_file=credentials_file).check_access()
    return detail


def store_credentials(policy, values):
    """Check `values` ({key: secret}) against the authority of `policy` with one
    authenticated request, then keep them in its credentials file (mode 600, other lines
    kept). Return what the check reached. Raise EndpointError (AuthenticationError when
    refused) and leave the file as it was."""
    from syncer.endpoints.factory import build_endpoint

    path = policy.authority.credentials
    with staged_credentials(path, values) as staged:
        candidate = policy.model_copy(update={"authority": policy.authority.model_copy(
            update={"credentials": staged})})
        try:
            detail = build_endpoint(candidate, retry=QUICK_RETRY).check_access()
        except SyncerError as error:  # name the file the user knows, not the staged one
            error.args = (str(error).replace(str(staged), str(path)),)
            raise
    return detail
