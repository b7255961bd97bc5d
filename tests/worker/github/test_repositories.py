"""The picker's repository list, in process against the loopback GitHub: every page of a
large installation, and an installation GitHub no longer knows dropped instead of failing
the whole list."""

from tests.fakes.github import FakeGitHub
from worker.deployment import Deployment
from worker.github import installations
from worker.github.repositories import list_repositories

USER_ID = "u_picker"


async def add_user(deployment: Deployment) -> None:
    insert = "INSERT INTO users (id, login) VALUES (?, 'picker')"
    await deployment.env.DATABASE.prepare(insert).bind(USER_ID).run()


async def test_every_page_is_listed_and_a_vanished_installation_is_dropped(
    github: FakeGitHub, deployment: Deployment
) -> None:
    names = [f"repo-{n:03}" for n in range(150)]  # two pages of GitHub's 100
    for name in names:
        github.add_repository("erin", name)
    big = github.install("erin", names, users={"erin"})
    gone = github.install("erin-old", [], users={"erin"})
    await add_user(deployment)
    for installation in (big, gone):
        await installations.record(
            deployment, USER_ID, installation.id, installation.account, "User"
        )
    del github.installations[gone.id]  # uninstalled on GitHub since

    listed = await list_repositories(deployment, USER_ID)

    assert [each.name for each in listed] == names
    assert {each.installation_id for each in listed} == {big.id}
    remaining = await installations.list_installations(deployment, USER_ID)
    assert [each.id for each in remaining] == [big.id]
