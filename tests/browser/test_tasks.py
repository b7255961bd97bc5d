"""Tasks in the web app (issue 12 item 6), in a real browser.

- The task walk, on the real local edge and node, a real workspace container and the real
  Claude Code adapter on the scripted model (tests/fakes/anthropic.py), for a GitHub
  repository (the loopback GitHub's App, a real git server): submit a task from the
  project's Tasks → the list shows it running on its own sam/ branch with the step it is at
  → the agent edits a file and its turn ends → SAM pushes the branch (holding that change,
  nothing else changed) and opens a pull request → completed, linked from the list and the
  chat → the workspace is stopped.
- A task cancelled while the agent works stays cancelled; one whose agent changed nothing
  fails with the reason and what to do, and nothing reaches GitHub.
- Idle (an edge whose idle timeout is 1 s, its cron sweep fired by hand): a clean workspace
  is stopped and its list row and page say why; one with uncommitted work and no GitHub is
  kept running, flagged with what to do.
- On an edge with the GitHub App (the loopback GitHub): the user installs the App from New
  project, picks a repository and a branch from what the App reaches, and the project is
  made from them; GitHub failing is shown, and retried.
"""

import asyncio
import re
import subprocess
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from playwright.sync_api import BrowserContext, Locator, Page, expect

from agent.config import CHECKOUT_CONTAINER_TOOLS
from agent.sessions.tools import installed
from tests.browser.conftest import VIEWPORT
from tests.browser.support import PHONE, api_client, app_url, create_running_workspace, sign_in
from tests.e2e.git_server import GitServer
from tests.fakes.anthropic import ScriptedModel, Turn, text, tool_use
from tests.fakes.github import FakeGitHub
from tests.fixtures.repos import make_repo
from tests.support.edge import Edge, running_edge, with_secrets
from tests.support.github_sign_in import Browser as SignInBrowser
from tests.support.wait import wait_for
from tests.worker.workspaces.test_workspaces_api import containers
from twin.d1 import D1Database
from twin.env import Env
from worker.deployment import Deployment
from worker.github import installations

pytestmark = pytest.mark.timeout(600)

# A task may bring up a workspace and start the adapter before the agent works.
TASK_READY_MS = 240_000
PR_USER = "browser-pr"
PR_OWNER = "dana"
# The warm window of the pull request's edge: long enough for a test's next task to claim the
# node, short enough that the walk sees its node torn down.
PR_WARM_SECONDS = 3
IDLER = "browser-idler"
IDLE_TIMEOUT_SECONDS = 1
SWEEP_CRON = "*/5 * * * *"
IDLE_SWEEP_SECONDS = 60.0
ALICE = "tasks-alice"
BOB = "tasks-bob"
MALLORY = "tasks-mallory"
SESSION_COOKIE = "sam_session"
AVATARS_ORIGIN = "https://avatars.githubusercontent.com"
# The smallest PNG (one transparent pixel): what GitHub's avatar host answers here.
PIXEL_PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d4944415478da63f8ffff3f0005fe02fea7d6a4f40000000049454e44ae426082"
)


@pytest.fixture(scope="module")
def github() -> Iterator[FakeGitHub]:
    with FakeGitHub() as fake:
        for login in (ALICE, BOB, MALLORY):
            account = fake.add_account(login, name=login.title(), email=f"{login}@example.com")
            account.avatar_url = f"{AVATARS_ORIGIN}/u/{account.id}?v=4"
        yield fake


@pytest.fixture(scope="module")
def github_edge(tmp_path_factory: pytest.TempPathFactory, github: FakeGitHub) -> Iterator[Edge]:
    data_dir: Path = with_secrets(tmp_path_factory.mktemp("tasks") / ".sam", github.app_secrets())
    variables = {**github.vars(users=f"{ALICE}, {BOB}, {MALLORY}"), **github.app_public_vars()}
    with running_edge(data_dir, vars=variables) as running:
        yield running


def sign_in_with_github(
    context: BrowserContext, edge: Edge, github: FakeGitHub, login: str
) -> SignInBrowser:
    """A GitHub sign-in session (the OAuth flow against the loopback GitHub) for `context`;
    the same session outside the browser, returned."""
    browser = SignInBrowser(edge)
    browser.sign_in(github, login)
    cookie = browser.cookies[SESSION_COOKIE]
    context.add_cookies([{"name": SESSION_COOKIE, "value": cookie, "url": app_url(edge)}])
    # No request leaves the machine: GitHub's avatar host is answered here.
    context.route(
        f"{AVATARS_ORIGIN}/**",
        lambda route: route.fulfill(status=200, content_type="image/png", body=PIXEL_PNG),
    )
    return browser


def record_installation(browser: SignInBrowser, github: FakeGitHub, installation_id: int) -> None:
    """The App's install → GitHub → setup round trip, without the browser."""
    started = browser.get("/api/github/install")
    assert started.status_code == 302, started.text
    state = parse_qs(urlsplit(started.headers["location"]).query)["state"][0]
    query = {"installation_id": str(installation_id), "setup_action": "install", "state": state}
    back = browser.get("/api/github/setup", params=query)
    assert back.status_code == 302, back.text


@pytest.fixture(scope="module")
def model() -> Iterator[ScriptedModel]:
    if not installed(CHECKOUT_CONTAINER_TOOLS):
        pytest.fail("tools/container is not installed: run scripts/setup")
    with ScriptedModel() as scripted:
        yield scripted


def store_model_key(edge: Edge, login: str, model: ScriptedModel) -> None:
    """`login`'s Anthropic key, with the scripted model as its gateway."""
    with api_client(edge, login) as client:
        key = {"kind": "anthropic", "secret": "sk-ant-api03-" + "t" * 43, "base_url": model.url}
        stored = client.post("/api/credentials", json=key)
        assert stored.status_code == 201, stored.text


def task_row(page: Page, title: str) -> Locator:
    return page.get_by_test_id("task-row").filter(has_text=title)


def submit_task(page: Page, edge: Edge, project_id: str, message: str) -> Locator:
    """The project's Tasks, a task submitted there; its row."""
    page.goto(app_url(edge, f"/projects/{project_id}"))
    page.get_by_role("link", name="Tasks", exact=True).click()
    expect(page).to_have_url(re.compile(rf"/projects/{project_id}/tasks$"))
    page.get_by_label("New task").fill(message)
    page.get_by_role("button", name="Submit task").click()
    row = task_row(page, message)
    expect(row).to_be_visible()
    return row


def workspace_status(edge: Edge, login: str, chat_path: str) -> str:
    with api_client(edge, login) as client:
        chat = client.get(chat_path).json()
        return str(client.get(f"/api/workspaces/{chat['workspace_id']}").json()["status"])


def test_a_task_is_cancelled_while_the_agent_works(
    context: BrowserContext, page: Page, pr_world: tuple[Edge, str, Path], model: ScriptedModel
) -> None:
    # A task needs a project on GitHub (its push): the pull request's world has one.
    edge, project_id, _ = pr_world
    # The model starts answering and then goes quiet: the agent is working when cancelled.
    model.script(Turn([text("Thinking about the whole repository")], stall=True))
    sign_in(context, edge, PR_USER)
    row = submit_task(page, edge, project_id, "Rewrite everything slowly")
    expect(row.get_by_test_id("task-step")).to_have_text(
        "the agent is working", timeout=TASK_READY_MS
    )

    row.get_by_role("button", name="Cancel task").click()
    row.get_by_role("button", name="Yes, cancel the task").click()
    expect(row.locator("[data-status]")).to_have_attribute("data-status", "cancelled")
    expect(row.get_by_test_id("task-reason")).to_be_visible()
    expect(row.get_by_role("button", name="Cancel task")).to_have_count(0)
    # Reloaded, the list says the same: the cancel is the API's, not only the page's.
    page.reload()
    expect(task_row(page, "Rewrite everything slowly").locator("[data-status]")).to_have_attribute(
        "data-status", "cancelled"
    )


def public_reads(github: FakeGitHub) -> Callable[[str | None, str, bool], int]:
    """GitHub's git endpoint for a public repository: anyone clones, a push needs a token
    with contents:write on it."""

    def access(token: str | None, full_name: str, push: bool) -> int:
        if token is None and not push:
            return 200
        return github.git_access(token, full_name, push)

    return access


def record_installation_of(edge: Edge, login: str, installation_id: int) -> None:
    """The App installed by `login` on PR_OWNER, as the setup callback records it (the
    GitHub sign-in it needs is another test's: this edge's GitHub base URL is the git server)."""
    with api_client(edge, login) as client:
        user_id = client.get("/api/auth/me").json()["id"]
    database = D1Database(edge.data_dir / "d1" / "sam.sqlite")
    env = Env({"DATABASE": database, "SAM_DOMAIN": edge.domain})
    record = installations.record(Deployment.of(env), user_id, installation_id, PR_OWNER, "User")
    # On a thread of its own: Playwright's sync API keeps an event loop running in this one.
    try:
        with ThreadPoolExecutor(max_workers=1) as pool:
            pool.submit(asyncio.run, record).result()
    finally:
        database.close()


@pytest.fixture(scope="module")
def pr_world(
    tmp_path_factory: pytest.TempPathFactory, github: FakeGitHub, model: ScriptedModel
) -> Iterator[tuple[Edge, str, Path]]:
    """An edge whose GitHub is the loopback one, git on a real git server; a project of
    PR_USER's on PR_OWNER/app there; the bare repository behind it."""
    root = tmp_path_factory.mktemp("pr")
    with GitServer(root / "served", public_reads(github)) as git_server:
        url = git_server.publish(make_repo(root / "sources", "app"), owner=PR_OWNER)
        bare = git_server.bare_path(url)
        github.add_repository(PR_OWNER, "app", git_dir=bare)
        installation = github.install(PR_OWNER, ["app"], users={PR_USER})
        data_dir = with_secrets(root / ".sam", github.app_secrets())
        settings = {
            **github.app_public_vars(),
            # git lives on the base URL (as on github.com), the REST API on its own.
            "SAM_GITHUB_BASE_URL": git_server.url,
            "SAM_LOCAL_REPOSITORY_ROOTS": str(root),
            "SAM_WARM_TIMEOUT_SECONDS": str(PR_WARM_SECONDS),
        }
        with running_edge(data_dir, vars=settings) as edge:
            record_installation_of(edge, PR_USER, installation.id)
            store_model_key(edge, PR_USER, model)
            with api_client(edge, PR_USER) as client:
                made = client.post(
                    "/api/projects",
                    json={"repository": url, "provider": "local", "permission_mode": "bypass"},
                )
                assert made.status_code == 201, made.text
            yield edge, str(made.json()["id"]), bare
            with api_client(edge, PR_USER) as client:
                for workspace in client.get("/api/workspaces").json()["workspaces"]:
                    client.delete(f"/api/workspaces/{workspace['id']}")


def git_in(bare: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "--git-dir", str(bare), *args], check=True, capture_output=True, text=True
    ).stdout


def test_a_github_task_ends_in_a_pull_request_linked_from_the_list_and_the_chat(
    context: BrowserContext,
    page: Page,
    pr_world: tuple[Edge, str, Path],
    github: FakeGitHub,
    model: ScriptedModel,
) -> None:
    edge, project_id, bare = pr_world
    main_before = git_in(bare, "rev-parse", "main").strip()
    write = tool_use("Bash", {"command": "printf done > NOTES.md", "description": "write notes"})
    model.script(
        Turn([text("I'll add NOTES.md."), write]),
        Turn([text("Added **NOTES.md**.")]),
    )
    sign_in(context, edge, PR_USER)
    row = submit_task(page, edge, project_id, "Add the release NOTES")

    # Running at once, on its own branch, saying which step it is at.
    expect(row.locator("[data-status]")).to_have_attribute(
        "data-status", re.compile("^(queued|running)$")
    )
    expect(row.get_by_test_id("task-branch")).to_have_text(
        re.compile(r"^sam/add-the-release-notes-")
    )
    expect(row.get_by_test_id("task-step")).to_be_visible()
    expect(row.get_by_role("button", name="Cancel task")).to_be_visible()

    # The turn ends, SAM pushes and opens the pull request: completed, nothing to cancel.
    expect(row.locator("[data-status]")).to_have_attribute(
        "data-status", "completed", timeout=TASK_READY_MS
    )
    expect(row.get_by_test_id("task-step")).to_have_count(0)
    expect(row.get_by_role("button", name="Cancel task")).to_have_count(0)
    elapsed = row.get_by_test_id("task-elapsed").inner_text()
    assert re.fullmatch(r"\d+ s|\d+ min \d\d s", elapsed), elapsed
    assert model.remaining == 0

    # The pull request, linked from the list: GitHub's own page for it.
    [pull] = github.repositories[f"{PR_OWNER}/app"].pulls
    link = row.get_by_test_id("task-pull-request")
    expect(link).to_have_attribute("href", pull["html_url"])
    branch = row.get_by_test_id("task-branch").inner_text()
    assert pull["head"]["ref"] == branch and pull["base"]["ref"] == "main", pull

    # SAM's push: the task's branch holds the agent's change; main is as it was.
    assert git_in(bare, "show", f"{branch}:NOTES.md") == "done"
    assert git_in(bare, "rev-parse", "main").strip() == main_before
    heads = git_in(bare, "for-each-ref", "--format=%(refname:short)", "refs/heads").split()
    assert sorted(heads) == sorted(["main", branch])

    # On a phone's width the list fits without scrolling sideways (a branch name is long).
    page.set_viewport_size(PHONE)
    expect(row.get_by_test_id("task-pull-request")).to_be_visible()
    width = page.evaluate("() => document.documentElement.scrollWidth")
    assert width <= PHONE["width"], f"the tasks scroll sideways at 375 px ({width} px wide)"
    page.set_viewport_size(VIEWPORT)

    # The chat says it too, and the workspace is stopped.
    chat_link = row.get_by_role("link", name="chat")
    chat_path = "/api" + str(chat_link.get_attribute("href"))
    chat_link.click()
    expect(page.get_by_test_id("conversation")).to_contain_text(pull["html_url"])
    assert workspace_status(edge, PR_USER, chat_path) == "stopped"

    # Its node, holding nothing else, went warm; after the warm window it is torn down and
    # nothing of the task is left running: no node, no container.
    with api_client(edge, PR_USER) as client:
        workspace_id = client.get(chat_path).json()["workspace_id"]
        node_id = client.get(f"/api/workspaces/{workspace_id}").json()["node_id"]
        wait_for(
            lambda: client.get(f"/api/nodes/{node_id}").status_code == 404,
            "the warm node torn down after its window",
            timeout=60,
        )
    wait_for(lambda: containers(workspace_id) == [], "no container of the task left", timeout=30)


@pytest.fixture(scope="module")
def idle_edge(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Edge]:
    data_dir = tmp_path_factory.mktemp("idle") / ".sam"
    settings = {
        "SAM_LOCAL_REPOSITORY_ROOTS": str(tmp_path_factory.getbasetemp()),
        "SAM_IDLE_TIMEOUT_SECONDS": str(IDLE_TIMEOUT_SECONDS),
    }
    with running_edge(data_dir, vars=settings) as edge:
        yield edge
        with api_client(edge, IDLER) as client:
            for workspace in client.get("/api/workspaces").json()["workspaces"]:
                client.delete(f"/api/workspaces/{workspace['id']}")


def checkout_of(edge: Edge, workspace: dict[str, object]) -> Path:
    """The workspace's checkout on its local node's disk."""
    node_dir = edge.data_dir / "nodes" / str(workspace["node_id"])
    found = [git.parent for git in node_dir.rglob(".git") if str(workspace["id"]) in str(git)]
    assert len(found) == 1, found
    return found[0]


def test_idle_workspaces_say_why_they_stopped_or_what_is_left_to_do(
    context: BrowserContext, page: Page, idle_edge: Edge, tmp_path_factory: pytest.TempPathFactory
) -> None:
    repos = tmp_path_factory.mktemp("idle-repos")
    clean = create_running_workspace(idle_edge, IDLER, str(make_repo(repos, "clean")))
    dirty = create_running_workspace(idle_edge, IDLER, str(make_repo(repos, "dirty")))
    (checkout_of(idle_edge, dirty) / "unsaved.txt").write_text("work saved nowhere else\n")

    def swept() -> bool:
        with idle_edge.client() as loopback:
            assert loopback.get("/__scheduled", params={"cron": SWEEP_CRON}).status_code == 200
        with api_client(idle_edge, IDLER) as client:
            shown = {w["id"]: w for w in client.get("/api/workspaces").json()["workspaces"]}
        return shown[clean["id"]]["status"] == "stopped" and bool(
            shown[dirty["id"]]["needs_attention"]
        )

    wait_for(swept, "the idle sweep to stop one workspace and flag the other", IDLE_SWEEP_SECONDS)

    sign_in(context, idle_edge, IDLER)
    page.goto(app_url(idle_edge, "/workspaces"))
    rows = page.get_by_test_id("workspace-row")
    reason = "stopped after 1 s without terminal or agent activity"
    expect(rows.filter(has_text="clean").get_by_test_id("stopped-reason")).to_have_text(reason)
    flagged = rows.filter(has_text="dirty")
    expect(flagged.locator("[data-status]")).to_have_attribute("data-status", "running")
    expect(flagged.get_by_test_id("needs-attention")).to_contain_text("unpushed work")
    expect(flagged.get_by_test_id("stopped-reason")).to_have_count(0)

    page.goto(app_url(idle_edge, f"/workspaces/{clean['id']}"))
    stopped = page.get_by_role("region", name="This workspace is stopped")
    expect(stopped.get_by_test_id("stopped-reason")).to_have_text(reason)


def test_a_project_from_a_repository_the_github_app_reaches(
    page: Page, context: BrowserContext, github_edge: Edge, github: FakeGitHub
) -> None:
    github.add_repository(
        ALICE,
        "notes",
        private=True,
        default_branch="trunk",
        branches={"trunk": "a" * 40, "dev": "b" * 40},
    )
    github.add_repository(MALLORY, "secret-plans", branches={"main": "c" * 40})
    installation = github.install(ALICE, ["notes"], users={ALICE})
    github.install(MALLORY, ["secret-plans"], users={MALLORY})
    sign_in_with_github(context, github_edge, github, ALICE)

    # Before the App is installed for this user, New project says how to get a picker.
    page.goto(app_url(github_edge, "/projects/new"))
    expect(page.get_by_text("reaches none of your repositories yet")).to_be_visible()
    github.setup_url = app_url(github_edge, "/api/github/setup")
    github.installs_next = installation.id
    page.get_by_role("link", name="Install the GitHub App").click()
    page.wait_for_url(re.compile(rf"/\?github_installation={installation.id}$"))

    page.goto(app_url(github_edge, "/projects/new"))
    picker = page.get_by_label("GitHub repository")
    # Only what the user's own installation reaches: not another user's repository.
    expect(picker.locator("option")).to_have_text(
        ["Choose one, or enter a URL below", f"{ALICE}/notes (private)"]
    )
    picker.select_option(f"{ALICE}/notes")
    expect(page.get_by_label("Repository", exact=True)).to_have_value(
        f"{github.url}/{ALICE}/notes.git"
    )
    branch = page.get_by_label("Default branch")
    expect(branch.locator("option")).to_have_text(["trunk", "dev"])
    expect(branch).to_have_value("trunk")
    branch.select_option("dev")

    page.get_by_role("button", name="Create project").click()
    page.wait_for_url("**/projects/*")
    expect(page.get_by_text(f"{github.url}/{ALICE}/notes.git")).to_be_visible()
    expect(page.get_by_text("· dev")).to_be_visible()


def test_github_failing_is_said_and_retried_from_the_picker(
    page: Page, context: BrowserContext, github_edge: Edge, github: FakeGitHub
) -> None:
    github.add_repository(BOB, "tools", private=False, branches={"main": "d" * 40})
    installation = github.install(BOB, ["tools"], users={BOB})
    browser = sign_in_with_github(context, github_edge, github, BOB)
    record_installation(browser, github, installation.id)

    github.app_fault = (502, {})
    try:
        page.goto(app_url(github_edge, "/projects/new"))
        expect(page.get_by_role("alert")).to_contain_text("GitHub")
    finally:
        github.app_fault = None
    page.get_by_role("button", name="Try again").click()
    picker = page.get_by_label("GitHub repository")
    expect(picker.locator("option")).to_have_text(
        ["Choose one, or enter a URL below", f"{BOB}/tools"]
    )

    # Picking, then typing a URL by hand: the URL is what is kept, with a free-text branch.
    picker.select_option(f"{BOB}/tools")
    repository = page.get_by_label("Repository", exact=True)
    repository.fill("https://example.com/elsewhere.git")
    expect(picker).to_have_value("")
    expect(page.get_by_label("Default branch")).to_have_value("")
    expect(repository).to_have_value("https://example.com/elsewhere.git")


def test_a_task_whose_agent_changed_nothing_fails_saying_what_to_do(
    context: BrowserContext,
    page: Page,
    pr_world: tuple[Edge, str, Path],
    github: FakeGitHub,
    model: ScriptedModel,
) -> None:
    edge, project_id, bare = pr_world
    pulls_before = len(github.repositories[f"{PR_OWNER}/app"].pulls)
    model.script(Turn([text("The repository already says that; nothing to change.")]))
    sign_in(context, edge, PR_USER)
    row = submit_task(page, edge, project_id, "Say hello in the README")

    expect(row.locator("[data-status]")).to_have_attribute(
        "data-status", "failed", timeout=TASK_READY_MS
    )
    expect(row.get_by_test_id("task-reason")).to_contain_text("The agent changed nothing")
    expect(row.get_by_test_id("task-reason")).to_contain_text("submit the task again")
    expect(row.get_by_test_id("task-pull-request")).to_have_count(0)
    expect(row.get_by_role("button", name="Cancel task")).to_have_count(0)
    # Nothing reached GitHub: no branch for the task, no pull request.
    branch = row.get_by_test_id("task-branch").inner_text()
    heads = git_in(bare, "for-each-ref", "--format=%(refname:short)", "refs/heads").split()
    assert branch not in heads
    assert len(github.repositories[f"{PR_OWNER}/app"].pulls) == pulls_before
