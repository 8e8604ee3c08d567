"""GitLab groups as the authoritative copy: one bare mirror per project.

python-gitlab lists the groups' projects (subgroups included) following
`Link rel="next"`; each project is one entry `<path_with_namespace>.git` whose
checksum is a SHA-256 over its branch and tag SHAs (syncer.endpoints.git.refs_digest),
so verify can compare it with the same digest of the local mirror. Repositories
are copied with git, not file by file: the file capabilities are absent.
"""

import logging
import os
import shutil
import tempfile
import time
from pathlib import Path

from syncer.endpoints import git
from syncer.endpoints.base import Capabilities, Entry, check_relative_path
from syncer.errors import AuthenticationError, EndpointError
from syncer.index.db import LOCAL
from syncer.index.scan import ScanStats

log = logging.getLogger("syncer.gitlab")
# Repository verification fails with this digest, so fsck failures count as "changed".
FSCK_FAILED = "0" * 64


class GitLabEndpoint:
    capabilities = Capabilities(
        checksum="sha256", can_read=False, can_write=False, can_delete=False,
        reason="GitLab projects are git repositories, copied with git (clone --mirror, push), not file by file")
    layout = "repositories"
    remote_writes = ("create_project", "push_refs")  # what a dry run must not do

    def __init__(self, url, groups, token, include_subgroups=True, credentials_file=None):
        self.url = url.rstrip("/")
        self.groups = [str(group) for group in groups]
        self.token = token
        self.include_subgroups = include_subgroups
        self.credentials_file = credentials_file
        self.retry_after = None
        self.local_state = {}  # mirror path -> (refs, fsck problem or None), filled by index_local
        self._client = None

    def describe(self):
        return f"gitlab:{self.url} ({', '.join(self.groups)})"

    def credential_hint(self):
        where = f" in {self.credentials_file}" if self.credentials_file else ""
        return f"GITLAB_TOKEN{where} (a token with read_api and read_repository scopes)"

    # --- the API ------------------------------------------------------------------

    def client(self):
        if self._client is None:
            import gitlab

            self._client = gitlab.Gitlab(self.url, private_token=self.token, timeout=60,
                                         retry_transient_errors=False)

            def remember_retry_after(response, *args, **kwargs):
                from syncer.endpoints.http import retry_after_seconds

                if response.status_code == 429:
                    self.retry_after = retry_after_seconds(response.headers)

            self._client.session.hooks["response"].append(remember_retry_after)
        return self._client

    def call(self, what, function):
        """Run a python-gitlab call; turn its exceptions into the project's errors."""
        import gitlab.exceptions
        import requests

        self.retry_after = None
        try:
            return function()
        except gitlab.exceptions.GitlabAuthenticationError:
            raise AuthenticationError(f"{self.describe()}: the token was refused (HTTP 401) while {what}; "
                                      f"check {self.credential_hint()}")
        except gitlab.exceptions.GitlabError as error:
            status = error.response_code
            message = error.error_message if isinstance(error.error_message, str) else str(error.error_message)
            if status == 401:
                raise AuthenticationError(f"{self.describe()}: the token was refused (HTTP 401) while {what}; "
                                          f"check {self.credential_hint()}")
            temporary = status in (None, 408, 429, 500, 502, 503, 504)
            raise EndpointError(f"{self.describe()}: {what}: HTTP {status}: {message[:200]}",
                                permanent=not temporary, retry_after=self.retry_after if status == 429 else None)
        except requests.RequestException as error:
            raise EndpointError(f"{self.describe()}: {what}: cannot connect ({error.__class__.__name__})")

    def list_projects(self):
        """Return the projects of every configured group as dicts, each once."""
        projects = {}
        for group in self.groups:
            def fetch(group=group):
                manager = self.client().groups.get(group, lazy=True).projects
                return [project.attributes for project in manager.list(
                    iterator=True, include_subgroups=str(bool(self.include_subgroups)).lower(), with_shared="false",
                    per_page=100, obey_rate_limit=False, max_retries=0)]
            for project in self.call(f"listing the projects of group {group}", fetch):
                projects.setdefault(project["id"], project)
        return sorted(projects.values(), key=lambda project: project.get("path_with_namespace") or "")

    def remote_refs(self, project):
        """Return {refname: sha} of a project's branches and tags (a tag's `target`, which
        is the tag object for an annotated tag, as `git for-each-ref` shows it)."""
        def fetch():
            handle = self.client().projects.get(project["id"], lazy=True)
            refs = {}
            for branch in handle.branches.list(iterator=True, per_page=100, obey_rate_limit=False, max_retries=0):
                refs[f"refs/heads/{branch.name}"] = branch.commit["id"]
            for tag in handle.tags.list(iterator=True, per_page=100, obey_rate_limit=False, max_retries=0):
                refs[f"refs/tags/{tag.name}"] = tag.attributes.get("target") or tag.commit["id"]
            return refs

        return self.call(f"reading the refs of {project['path_with_namespace']}", fetch)

    def entry_for(self, project, with_refs=True):
        path = f"{project.get('path_with_namespace') or ''}.git"
        problem = check_relative_path(path)
        if problem:
            return Entry(path.replace("\x00", "?"), None, note=f"unsafe name: {problem}")
        if not with_refs:
            return Entry(path, None, ref=project)
        refs = {} if project.get("empty_repo") else self.remote_refs(project)
        return Entry(path, None, git.refs_digest(refs), "sha256", ref={"project": project, "refs": refs})

    def list_entries(self):
        for project in self.list_projects():
            yield self.entry_for(project)

    def refresh_listing(self, db, dataset, deep=False):
        """Store one authority row per project; where the local mirror differs (or failed
        git fsck), the row's note says how, and verify shows it as the reason."""
        entries = []
        for entry in self.list_entries():
            local = self.local_state.get(entry.path)
            if local and entry.checksum:
                refs, problem = local
                note = f"git fsck failed: {problem}" if problem else (
                    git.describe_ref_differences(refs, entry.ref["refs"]) or None)
                entry = Entry(entry.path, None, entry.checksum, "sha256", note=note, ref=entry.ref)
            entries.append(entry)
        db.replace_listing(dataset, entries)
        return []

    # --- the local mirrors ------------------------------------------------------------

    def index_local(self, db, dataset, root, deep=False):
        """Index the bare mirrors below `root` as the dataset's local side: one row per
        repository with its refs digest. `git fsck` runs when the refs changed since the
        last good check, or always with `deep`. Return ScanStats."""
        started = time.monotonic()
        stats = ScanStats()
        previous = {row[0]: row[4] for row in db.iterate_files(dataset, LOCAL)}
        records = []
        for relative in git.find_mirrors(root):
            stats.files += 1
            absolute = Path(root) / relative
            try:
                refs = git.local_refs(absolute)
            except EndpointError as error:
                self.local_state[relative] = ({}, str(error))
                records.append({"path": relative, "size": None, "sha256": FSCK_FAILED, "hashed_at": time.time()})
                continue
            digest = git.refs_digest(refs)
            problem = None
            if deep or previous.get(relative) != digest:
                stats.hashed += 1
                try:
                    git.run_git(git.fsck_argv(absolute), where=str(absolute))
                except EndpointError as error:
                    problem = str(error).partition(": ")[2] or str(error)
            self.local_state[relative] = (refs, problem)
            records.append({"path": relative, "size": None, "sha256": FSCK_FAILED if problem else digest,
                            "hashed_at": time.time()})
        with db.transaction():
            db.execute("DELETE FROM files WHERE dataset=? AND side=?", (dataset, LOCAL))
            db.upsert_files(dataset, LOCAL, records)
        stats.seconds = time.monotonic() - started
        return stats

    def list_mirrors(self, root):
        return list(git.find_mirrors(root))

    def auth(self):
        return git.auth_environment(self.url, self.token)

    def clone_mirror(self, project, target):
        """Clone the project as a bare mirror at `target`, via a temporary name beside it
        so that an interrupted clone never looks like a mirror."""
        target = Path(target)
        target.parent.mkdir(parents=True, exist_ok=True)
        temporary = Path(tempfile.mkdtemp(prefix=".syncer-clone-", dir=target.parent))
        try:
            git.run_git(git.clone_mirror_argv(project["http_url_to_repo"], temporary / "mirror.git"), self.auth(),
                        where=f"{self.describe()}: {project['path_with_namespace']}")
            os.replace(temporary / "mirror.git", target)
        finally:
            shutil.rmtree(temporary, ignore_errors=True)

    def update_mirror(self, project, target):
        """Fetch into an existing mirror, pruning refs deleted upstream."""
        where = f"{self.describe()}: {project['path_with_namespace']}"
        git.run_git(git.set_origin_argv(target, project["http_url_to_repo"]), where=where)
        git.run_git(git.update_mirror_argv(target), self.auth(), where=where)

    # --- restore ----------------------------------------------------------------------

    def create_project(self, namespace, path, visibility="private"):
        """Create a project `path` in the group `namespace`; return its dict."""
        def create():
            group = self.client().namespaces.get(namespace)
            project = self.client().projects.create({"name": path, "path": path, "namespace_id": group.id,
                                                     "visibility": visibility})
            return project.attributes

        return self.call(f"creating the project {namespace}/{path}", create)

    def push_refs(self, mirror, project):
        """Push the mirror's branches and tags (not hidden refs) to the project."""
        git.run_git(git.push_refs_argv(mirror, project["http_url_to_repo"]), self.auth(),
                    where=f"{self.describe()}: {project['path_with_namespace']}")

    def open_entry(self, entry):
        raise EndpointError(f"{self.describe()}: {self.capabilities.reason}", permanent=True)

    def write_entry(self, path, source, digests):
        raise EndpointError(f"{self.describe()}: {self.capabilities.reason}", permanent=True)

    def delete_entry(self, path):
        raise EndpointError(f"{self.describe()}: {self.capabilities.reason}", permanent=True)
