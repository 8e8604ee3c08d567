"""The mirror contract (syncer.endpoints.base.MirrorEndpoint), run against every service
of git repositories: gitlab (its loopback fake, serving git over smart HTTP). What it
shares with the file contract runs in test_conformance.py."""

from syncer.endpoints.git import find_mirrors, local_refs, refs_digest


def project(endpoint, path):
    return next(found for found in endpoint.list_projects() if found["path_with_namespace"] == path)


def test_projects_are_listed_once_each_with_their_branches_and_tags(mirror_harness):
    mirror_harness.seed()
    endpoint = mirror_harness.endpoint()
    expected = mirror_harness.expected()
    projects = endpoint.list_projects()
    assert sorted(f"{found['path_with_namespace']}.git" for found in projects) == sorted(expected)
    for found in projects:
        assert refs_digest(endpoint.remote_refs(found)) == expected[f"{found['path_with_namespace']}.git"]


def test_a_clone_is_a_mirror_and_an_update_follows_the_service(mirror_harness, tmp_path):
    mirror_harness.seed()
    endpoint = mirror_harness.endpoint()
    tool = project(endpoint, "team/tool")
    target = tmp_path / "mirrors" / "team" / "tool.git"
    endpoint.clone_mirror(tool, target)
    assert list(find_mirrors(tmp_path / "mirrors")) == ["team/tool.git"]  # and nothing half-cloned beside it
    assert local_refs(target) == endpoint.remote_refs(tool)
    before = local_refs(target)
    mirror_harness.change("team/tool")
    endpoint.update_mirror(tool, target)
    assert local_refs(target) == endpoint.remote_refs(tool) != before


def test_a_created_project_receives_a_mirrors_branches_and_tags(mirror_harness, tmp_path):
    mirror_harness.seed()
    endpoint = mirror_harness.endpoint()
    mirror = tmp_path / "tool.git"
    endpoint.clone_mirror(project(endpoint, "team/tool"), mirror)
    created = endpoint.create_project("team", "restored")
    assert created["path_with_namespace"] == "team/restored"
    assert endpoint.remote_refs(created) == {}
    endpoint.push_refs(mirror, created)
    assert endpoint.remote_refs(created) == local_refs(mirror) != {}


def test_dry_run_creates_and_pushes_nothing(mirror_harness, tmp_path):
    mirror_harness.seed()
    endpoint = mirror_harness.endpoint(dry_run=True)
    mirror = tmp_path / "tool.git"
    endpoint.clone_mirror(project(endpoint, "team/tool"), mirror)  # mirroring only reads the service
    endpoint.create_project("team", "restored")
    endpoint.push_refs(mirror, project(endpoint, "team/empty"))
    assert [operation for operation, _ in endpoint.planned] == ["create_project", "push_refs"]
    assert "team/restored" not in {found["path_with_namespace"] for found in endpoint.list_projects()}
    assert endpoint.remote_refs(project(endpoint, "team/empty")) == {}
