"""Pull requests on the loopback GitHub, as issue 12's task runner will call them: through
the Worker's REST client with installation tokens narrowed by permission.

A pull_requests:read token lists but cannot open one (403); a write token opens one for an
existing head branch, a second for the same head is GitHub's 422, and so is a head that
does not exist; `head=owner:branch` finds the one already open.
"""

import pytest

from tests.fakes.github import FakeGitHub
from worker.deployment import Deployment
from worker.errors import InvalidInput, UpstreamFailed
from worker.github import rest
from worker.github.tokens import installation_token


def alice(github: FakeGitHub) -> int:
    [found] = [each.id for each in github.installations.values() if each.account == "alice"]
    return found


async def test_pulls_honour_the_tokens_permission_and_github_s_rules(
    github: FakeGitHub, deployment: Deployment
) -> None:
    config = deployment.config
    reader = await installation_token(
        deployment, alice(github), repositories=("web",), permissions={"pull_requests": "read"}
    )
    writer = await installation_token(
        deployment, alice(github), repositories=("web",), permissions={"pull_requests": "write"}
    )
    pull = {"title": "Task", "head": "dev", "base": "main", "body": "by SAM"}

    with pytest.raises(UpstreamFailed, match="403"):
        await rest.api(config, "POST", "/repos/alice/web/pulls", token=reader.token, body=pull)
    opened = await rest.api(
        config, "POST", "/repos/alice/web/pulls", token=writer.token, body=pull, expect=(201,)
    )
    assert opened["html_url"].endswith("/alice/web/pull/1")

    with pytest.raises(InvalidInput, match="already exists"):
        await rest.api(config, "POST", "/repos/alice/web/pulls", token=writer.token, body=pull)
    with pytest.raises(InvalidInput, match="does not exist"):
        await rest.api(
            config,
            "POST",
            "/repos/alice/web/pulls",
            token=writer.token,
            body={**pull, "head": "sam/never-pushed"},
        )
    found = await rest.api(
        config, "GET", "/repos/alice/web/pulls?head=alice:dev&state=open", token=reader.token
    )
    assert [each["number"] for each in found] == [1]
    # The token reaches web only.
    with pytest.raises(rest.GitHubNotFound):
        await rest.api(config, "GET", "/repos/alice/api/pulls", token=writer.token)
