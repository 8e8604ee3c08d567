"""A loopback GitLab: REST API v4 (what python-gitlab asks) and git over HTTP.

The API follows shared/reference/cloud-apis.md: `PRIVATE-TOKEN`, offset paging with
`X-Page`/`X-Next-Page`/`X-Total` and a `Link` header built from the server's own
`http://127.0.0.1:PORT` (python-gitlab follows only `Link rel="next"`), branches and
tags from real bare repositories, `POST /projects` with 400 on a taken path, 401,
404 and injectable 429. git is served by git's own `http-backend` (CGI) behind a
Basic `oauth2:TOKEN` check; `refs/merge-requests/*` are advertised but hidden from
pushes (`receive.hideRefs`), as GitLab does, so `push --mirror` is rejected.
"""

import base64
import json
import os
import subprocess
import tempfile
from pathlib import Path
from urllib.parse import quote, unquote, urlencode

from tests.fakes.http import FakeServer, Response, json_response

TOKEN = "glpat-fake-token-0123456789"
HTTP_BACKEND = "/usr/lib/git-core/git-http-backend"
GIT_IDENTITY = {"GIT_AUTHOR_NAME": "Fake", "GIT_AUTHOR_EMAIL": "fake@example.invalid",
                "GIT_COMMITTER_NAME": "Fake", "GIT_COMMITTER_EMAIL": "fake@example.invalid",
                "GIT_CONFIG_NOSYSTEM": "1", "HOME": "/nonexistent"}


def git(*arguments, cwd=None, check=True):
    environment = {**os.environ, **GIT_IDENTITY}
    done = subprocess.run(["git", *arguments], cwd=cwd, env=environment, capture_output=True, text=True)
    if check and done.returncode:
        raise RuntimeError(f"git {' '.join(arguments)}: {done.stderr}")
    return done.stdout


class FakeGitLab(FakeServer):
    def __init__(self, root, token=TOKEN):
        super().__init__()
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.token = token
        self.groups = {}  # id -> {"id", "full_path"}
        self.projects = {}  # id -> project document (without the computed fields)
        self.next_id = 100
        self.git_requests = []  # (method, path, Authorization header present?)

    # --- seeding ------------------------------------------------------------------

    def allocate(self):
        self.next_id += 1
        return self.next_id

    def add_group(self, full_path):
        for group in self.groups.values():
            if group["full_path"] == full_path:
                return group["id"]
        group_id = self.allocate()
        self.groups[group_id] = {"id": group_id, "full_path": full_path, "path": full_path.rsplit("/", 1)[-1],
                                 "name": full_path.rsplit("/", 1)[-1]}
        return group_id

    def add_project(self, namespace, path, repository=True):
        """Create a project (and its bare repository unless `repository` is False: a
        listing-only project, e.g. a hostile name)."""
        namespace_id = self.add_group(namespace)
        project_id = self.allocate()
        path_with_namespace = f"{namespace}/{path}"
        self.projects[project_id] = {"id": project_id, "name": path, "path": path,
                                     "path_with_namespace": path_with_namespace,
                                     "namespace": {"id": namespace_id, "full_path": namespace,
                                                   "kind": "group"}, "visibility": "private",
                                     "archived": False, "last_activity_at": "2026-01-01T00:00:00.000Z"}
        if repository:
            git("init", "--bare", "--quiet", "--initial-branch=main", str(self.repository(project_id)))
            git("config", "receive.hideRefs", "refs/merge-requests", cwd=self.repository(project_id))
            git("config", "http.receivepack", "true", cwd=self.repository(project_id))
        return project_id

    def repository(self, project_id):
        return self.root / f"{self.projects[project_id]['path_with_namespace']}.git"

    def commit(self, project_id, files, branch="main", message="change"):
        """Commit `files` ({name: text}) on `branch` of the project; return the SHA."""
        with tempfile.TemporaryDirectory() as work:
            bare = str(self.repository(project_id))
            git("init", "--quiet", work)
            fetched = subprocess.run(["git", "fetch", "--quiet", bare, f"refs/heads/{branch}:refs/heads/{branch}"],
                                     cwd=work, capture_output=True, env={**os.environ, **GIT_IDENTITY})
            if fetched.returncode == 0:
                git("checkout", "--quiet", branch, cwd=work)
            else:
                git("checkout", "--quiet", "--orphan", branch, cwd=work)
            for name, text in files.items():
                Path(work, name).parent.mkdir(parents=True, exist_ok=True)
                Path(work, name).write_text(text)
            git("add", "-A", cwd=work)
            git("commit", "--quiet", "--allow-empty", "-m", message, cwd=work)
            git("push", "--quiet", bare, f"{branch}:refs/heads/{branch}", cwd=work)
            return git("rev-parse", "HEAD", cwd=work).strip()

    def tag(self, project_id, name, target="main", annotated=True):
        arguments = ["tag", "-a", name, "-m", name, target] if annotated else ["tag", name, target]
        git(*arguments, cwd=self.repository(project_id))

    def set_ref(self, project_id, ref, sha):
        git("update-ref", ref, sha, cwd=self.repository(project_id))

    # --- computed fields ------------------------------------------------------------

    def refs(self, project_id):
        """Return ({branch: sha}, {tag: (target, commit)}) of the project's repository."""
        repository = self.repository(project_id)
        if not repository.exists():
            return {}, {}
        output = git("for-each-ref", "--format=%(refname) %(objectname) %(*objectname)", "refs/heads", "refs/tags",
                     cwd=repository)
        branches, tags = {}, {}
        for line in output.splitlines():
            name, sha, peeled = (line.split(" ") + [""])[:3]
            if name.startswith("refs/heads/"):
                branches[name[len("refs/heads/"):]] = sha
            else:
                tags[name[len("refs/tags/"):]] = (sha, peeled or sha)
        return branches, tags

    def project_document(self, project_id):
        document = dict(self.projects[project_id])
        branches, _ = self.refs(project_id)
        document["http_url_to_repo"] = f"{self.url}/{quote(document['path_with_namespace'])}.git"
        document["web_url"] = f"{self.url}/{quote(document['path_with_namespace'])}"
        document["empty_repo"] = not branches
        document["default_branch"] = ("main" if "main" in branches else sorted(branches)[0]) if branches else None
        return document

    # --- the wire -------------------------------------------------------------------

    def error_body(self, status):
        return {"message": {401: "401 Unauthorized", 404: "404 Not Found", 429: "Retry later"}.get(status, str(status))}

    def handle(self, request):
        if request.path.startswith("/api/v4/"):
            if request.headers.get("PRIVATE-TOKEN") != self.token:
                return json_response({"message": "401 Unauthorized"}, 401)
            return self.api(request, request.path[len("/api/v4/"):])
        return self.git_http(request)

    def api(self, request, path):
        parts = [unquote(part) for part in path.split("/")]
        if parts == ["user"]:
            return json_response({"id": 1, "username": "tester"})
        if parts[0] == "groups" and len(parts) == 2 and request.method == "GET":
            group = self.find_group(parts[1])
            if not group:
                return json_response({"message": "404 Group Not Found"}, 404)
            return json_response(group)
        if parts[0] == "groups" and len(parts) == 3 and parts[2] == "projects" and request.method == "GET":
            group = self.find_group(parts[1])
            if not group:
                return json_response({"message": "404 Group Not Found"}, 404)
            subgroups = request.query.get("include_subgroups", "").lower() == "true"
            chosen = [pid for pid, project in sorted(self.projects.items())
                      if project["namespace"]["full_path"] == group["full_path"]
                      or (subgroups and project["namespace"]["full_path"].startswith(group["full_path"] + "/"))]
            return self.paged(request, [self.project_document(pid) for pid in chosen])
        if parts[0] == "namespaces" and len(parts) == 2:
            group = self.find_group(parts[1])
            if not group:
                return json_response({"message": "404 Namespace Not Found"}, 404)
            return json_response({"id": group["id"], "full_path": group["full_path"], "path": group["path"],
                                  "name": group["name"], "kind": "group"})
        if parts[0] == "projects":
            if len(parts) == 1 and request.method == "POST":
                return self.create_project(request)
            project_id = self.find_project(parts[1]) if len(parts) > 1 else None
            if project_id is None:
                return json_response({"message": "404 Project Not Found"}, 404)
            if len(parts) == 2:
                return json_response(self.project_document(project_id))
            if parts[2:] == ["repository", "branches"]:
                branches, _ = self.refs(project_id)
                return self.paged(request, [{"name": name, "commit": {"id": sha}, "protected": False}
                                            for name, sha in sorted(branches.items())])
            if parts[2:] == ["repository", "tags"]:
                _, tags = self.refs(project_id)
                return self.paged(request, [{"name": name, "target": target, "commit": {"id": commit}}
                                            for name, (target, commit) in sorted(tags.items())])
        return json_response({"message": "404 Not Found"}, 404)

    def find_group(self, identifier):
        if identifier.isdigit():
            return self.groups.get(int(identifier))
        return next((group for group in self.groups.values() if group["full_path"] == identifier), None)

    def find_project(self, identifier):
        if identifier.isdigit():
            return int(identifier) if int(identifier) in self.projects else None
        return next((pid for pid, project in self.projects.items()
                     if project["path_with_namespace"] == identifier), None)

    def create_project(self, request):
        if "json" in request.headers.get("Content-Type", ""):
            fields = json.loads(request.body or b"{}")
        else:
            from urllib.parse import parse_qs

            fields = {key: values[-1] for key, values in parse_qs(request.body.decode()).items()}
        namespace = self.groups.get(int(fields.get("namespace_id") or 0))
        if not namespace:
            return json_response({"message": {"namespace": ["is not valid"]}}, 400)
        path = fields.get("path") or fields.get("name")
        if any(p["path_with_namespace"] == f"{namespace['full_path']}/{path}" for p in self.projects.values()):
            return json_response({"message": {"path": ["has already been taken"]}}, 400)
        project_id = self.add_project(namespace["full_path"], path)
        self.projects[project_id]["visibility"] = fields.get("visibility", "private")
        return json_response(self.project_document(project_id), 201)

    def paged(self, request, items):
        page = max(int(request.query.get("page", 1) or 1), 1)
        per_page = min(max(int(request.query.get("per_page", 20) or 20), 1), 100)
        total_pages = max(1, -(-len(items) // per_page))
        chunk = items[(page - 1) * per_page:page * per_page]
        query = dict(request.query)

        def link(number):
            query.update(page=str(number), per_page=str(per_page))
            return f"{self.url}{request.path}?{urlencode(query)}"  # from its OWN address

        links = []
        headers = {"X-Page": str(page), "X-Per-Page": str(per_page), "X-Total": str(len(items)),
                   "X-Total-Pages": str(total_pages), "X-Prev-Page": str(page - 1) if page > 1 else "",
                   "X-Next-Page": str(page + 1) if page < total_pages else ""}
        if page > 1:
            links.append(f'<{link(page - 1)}>; rel="prev"')
        if page < total_pages:
            links.append(f'<{link(page + 1)}>; rel="next"')
        links.append(f'<{link(1)}>; rel="first"')
        links.append(f'<{link(total_pages)}>; rel="last"')
        headers["Link"] = ", ".join(links)
        return json_response(chunk, 200, headers)

    def git_http(self, request):
        """Serve git's smart HTTP protocol with git http-backend after a Basic auth check."""
        expected = "Basic " + base64.b64encode(f"oauth2:{self.token}".encode()).decode()
        authorization = request.headers.get("Authorization")
        with self.lock:
            self.git_requests.append((request.method, request.path, authorization is not None))
        if authorization != expected:
            return Response(401, b"HTTP Basic: Access denied\n", {"WWW-Authenticate": 'Basic realm="GitLab"'},
                            content_type="text/plain")
        environment = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"), "GIT_PROJECT_ROOT": str(self.root),
            "GIT_HTTP_EXPORT_ALL": "1", "PATH_INFO": unquote(request.path), "REQUEST_METHOD": request.method,
            "QUERY_STRING": request.query_string, "REMOTE_USER": "oauth2", "REMOTE_ADDR": "127.0.0.1",
            "CONTENT_TYPE": request.headers.get("Content-Type", ""), "CONTENT_LENGTH": str(len(request.body)),
            "GIT_CONFIG_NOSYSTEM": "1", "HOME": "/nonexistent",
        }
        if request.headers.get("Content-Encoding"):
            environment["HTTP_CONTENT_ENCODING"] = request.headers["Content-Encoding"]
        if request.headers.get("Git-Protocol"):
            environment["GIT_PROTOCOL"] = request.headers["Git-Protocol"]
        done = subprocess.run([HTTP_BACKEND], input=request.body, env=environment, capture_output=True)
        head, _, body = done.stdout.partition(b"\r\n\r\n")
        status, headers = 200, {}
        for line in head.decode("latin-1").split("\r\n"):
            key, _, value = line.partition(":")
            if key.lower() == "status":
                status = int(value.strip().split()[0])
            elif key:
                headers[key.strip()] = value.strip()
        return Response(status, body, headers, content_type=headers.pop("Content-Type", "text/plain"))
