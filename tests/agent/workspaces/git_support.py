"""The agent's git tests' GitHub: the loopback GitHub app serving `dana/app` over smart HTTP,
the installation tokens it honours, and the branch heads it holds.

    with served_repository(github, tmp_path) as (server, url):
        token = grant(github, "write")           # contents:write on dana/app, for an hour
        assert heads(server, url)["main"] == ...
"""

import secrets
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.e2e.git_server import GitServer
from tests.fakes.github import FakeGitHub
from tests.fakes.github_app_model import TokenGrant
from tests.fixtures.repos import git, make_repo

REPOSITORY = "dana/app"


@contextmanager
def served_repository(github: FakeGitHub, directory: Path) -> Iterator[tuple[GitServer, str]]:
    """`dana/app` with one commit, installed for the user dana; yields its server and URL."""
    owner, name = REPOSITORY.split("/")
    with GitServer(directory / "served", access=github.git_access) as server:
        url = server.publish(make_repo(directory, name), owner=owner)
        github.add_repository(owner, name, git_dir=server.bare_path(url))
        github.install(owner, [name], users={owner})
        yield server, url


def grant(github: FakeGitHub, level: str, repository: str = REPOSITORY) -> str:
    """A token the loopback GitHub honours at its git endpoint, as one it minted would be."""
    token = "ghs_" + secrets.token_hex(18)
    github.tokens[token] = TokenGrant(0, (repository,), {"contents": level}, time.time() + 3600)
    return token


def heads(server: GitServer, url: str) -> dict[str, str]:
    listed = git(server.bare_path(url), "for-each-ref", "--format=%(refname:short) %(objectname)")
    return dict(line.split() for line in listed.splitlines())
