"""GitLab groups as the authoritative copy: one bare mirror per project.

python-gitlab lists the groups' projects (subgroups included) following
`Link rel="next"`; each project is one entry `<path_with_namespace>.git` whose
checksum is a SHA-256 over its branch and tag SHAs (syncer.endpoints.git.refs_digest),
so verify can compare it with the same digest of the local mirror. Repositories
are copied with git, not file by file: this is a MirrorEndpoint.
"""

import os
import shutil
from pathlib import Path

from syncer.endpoints import git
from syncer.endpoints.base import Capabilities, Entry, check_relative_path
from syncer.errors import AuthenticationError, EndpointError
from syncer.fsio import make_temporary_folder


class GitLabEndpoint:
    capabilities = Capabilities(
        checksum="sha256", can_read=False, can_write=False, can_delete=False, repositories=True,
        reason="GitLab projects are git repositories, copied with git (clone --mirror, push), not file by file")

    def __init__(self, url, groups, token, include_subgroups=True, credentials_file=None):
        self.url = url.rstrip("/")
        self.groups = [str(group) for group in groups]
        self.token = token
        self.include_subgroups = include_subgroups
        self.credentials_file = credentials_file
        self.retry_after = None
        self.gitlab = None  # the python-gitlab client, made on first use

    def describe(self):
        return f"gitlab:{self.url} ({', '.join(self.groups)})"

    def _credential_hint(self):
        where = f" in {self.credentials_file}" if self.credentials_file else ""
        return f"GITLAB_TOKEN{where} (a token with read_api and read_repository scopes)"

    # --- the API ------------------------------------------------------------------

    def _client(self):
        if self.gitlab is None:
            import gitlab

            self.gitlab = gitlab.Gitlab(self.url, private_token=self.token, timeout=60, retry_transient_errors=False)

            def remember_retry_after(response, *args, **kwargs):
                from syncer.endpoints.http import retry_after_seconds

                if response.status_code == 429:
                    self.retry_after = retry_after_seconds(response.headers)

            self.gitlab.session.hooks["response"].append(remember_retry_after)
        return self.gitlab

    def _call(self, what, function):
        """Run a python-gitlab call; turn its exceptions into the project's errors."""
        import gitlab.exceptions
        import requests

        self.retry_after = None
        try:
            return function()
        except gitlab.exceptions.GitlabAuthenticationError:
            raise AuthenticationError(f"{self.describe()}: the token was refused (HTTP 401) while {what}; "
                                      f"check {self._credential_hint()}")
        except gitlab.exceptions.GitlabError as error:
            status = error.response_code
            message = error.error_message if isinstance(error.error_message, str) else str(error.error_message)
            if status == 401:
                raise AuthenticationError(f"{self.describe()}: the token was refused (HTTP 401) while {what}; "
                                          f"check {self._credential_hint()}")
            temporary = status in (None, 408, 429, 500, 502, 503, 504)
            raise EndpointError(f"{self.describe()}: {what}: HTTP {status}: {message[:200]}",
                                permanent=not temporary, retry_after=self.retry_after if status == 429 else None)
        except requests.RequestException as error:
            raise EndpointError(f"{self.describe()}: {what}: cannot connect ({error.__class__.__name__})")

    def check_access(self):
        """`/user` proves the token; reading each group proves it reaches the groups."""
        client = self._client()
        self._call("reading the token's user", client.auth)
        for group in self.groups:
            self._call(f"reading group {group}", lambda group=group: client.groups.get(group))
        return f"user {client.user.username}, groups {', '.join(map(str, self.groups))}"

    def list_projects(self):
        """Return the projects of every configured group as dicts, each once."""
        projects = {}
        for group in self.groups:
            def fetch(group=group):
                manager = self._client().groups.get(group, lazy=True).projects
                return [project.attributes for project in manager.list(
                    iterator=True, include_subgroups=str(bool(self.include_subgroups)).lower(), with_shared="false",
                    per_page=100, obey_rate_limit=False, max_retries=0)]
            for project in self._call(f"listing the projects of group {group}", fetch):
                projects.setdefault(project["id"], project)
        return sorted(projects.values(), key=lambda project: project.get("path_with_namespace") or "")

    def remote_refs(self, project):
        """Return {refname: sha} of a project's branches and tags (a tag's `target`, which
        is the tag object for an annotated tag, as `git for-each-ref` shows it)."""
        def fetch():
            handle = self._client().projects.get(project["id"], lazy=True)
            refs = {}
            for branch in handle.branches.list(iterator=True, per_page=100, obey_rate_limit=False, max_retries=0):
                refs[f"refs/heads/{branch.name}"] = branch.commit["id"]
            for tag in handle.tags.list(iterator=True, per_page=100, obey_rate_limit=False, max_retries=0):
                refs[f"refs/tags/{tag.name}"] = tag.attributes.get("target") or tag.commit["id"]
            return refs

        return self._call(f"reading the refs of {project['path_with_namespace']}", fetch)

    def _entry_for(self, project):
        path = f"{project.get('path_with_namespace') or ''}.git"
        problem = check_relative_path(path)
        if problem:
            return Entry(path.replace("\x00", "?"), None, note=f"unsafe name: {problem}")
        refs = {} if project.get("empty_repo") else self.remote_refs(project)
        return Entry(path, None, git.refs_digest(refs), "sha256", ref={"project": project, "refs": refs})

    def list_entries(self):
        for project in self.list_projects():
            yield self._entry_for(project)

    # --- the mirrors ------------------------------------------------------------------

    def _auth(self):
        return git.auth_environment(self.url, self.token)

    def clone_mirror(self, project, target):
        """Clone the project as a bare mirror at `target`, via a folder of syncer's
        temporary shape beside it, so that an interrupted clone never looks like a mirror
        and the next pull removes what it left (no project's path can take that shape)."""
        target = Path(target)
        target.parent.mkdir(parents=True, exist_ok=True)
        temporary = make_temporary_folder(target.parent)
        try:
            git.run_git(git.clone_mirror_argv(project["http_url_to_repo"], temporary / "mirror.git"), self._auth(),
                        where=f"{self.describe()}: {project['path_with_namespace']}")
            os.replace(temporary / "mirror.git", target)
        finally:
            shutil.rmtree(temporary, ignore_errors=True)

    def update_mirror(self, project, target):
        """Fetch into an existing mirror, pruning refs deleted upstream."""
        where = f"{self.describe()}: {project['path_with_namespace']}"
        git.run_git(git.set_origin_argv(target, project["http_url_to_repo"]), where=where)
        git.run_git(git.update_mirror_argv(target), self._auth(), where=where)

    # --- restore ----------------------------------------------------------------------

    def create_project(self, namespace, path):
        """Create a private project `path` in the group `namespace`; return its dict."""
        def create():
            group = self._client().namespaces.get(namespace)
            project = self._client().projects.create({"name": path, "path": path, "namespace_id": group.id,
                                                      "visibility": "private"})
            return project.attributes

        return self._call(f"creating the project {namespace}/{path}", create)

    def push_refs(self, mirror, project):
        """Push the mirror's branches and tags (not hidden refs) to the project."""
        git.run_git(git.push_refs_argv(mirror, project["http_url_to_repo"]), self._auth(),
                    where=f"{self.describe()}: {project['path_with_namespace']}")
