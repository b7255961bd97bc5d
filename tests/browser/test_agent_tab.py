"""The Agent tab in a real browser: the real edge and local node agent, a real workspace
container, the real Claude Code adapter through the node's model proxy, and the scripted
Messages API on loopback (tests/fakes/anthropic.py) as the model, stored as the user's own
gateway (the credential's base URL).

One walk, as a user would go: the tab says a credential is missing → one is stored →
start a session in ask mode with a prompt → the answer streams in as markdown → the agent
asks to write a file, seen by a second tab and answered in the first → a tool card with
its diff → reload: the conversation is rebuilt from the node's replay → a dropped viewer
resumes after its last seq → a next prompt continues the conversation → a turn cancelled
mid-stream → stop.
"""

import json
import re
import secrets
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from playwright.sync_api import BrowserContext, Page, expect

from tests.browser.support import (
    ALICE,
    app_url,
    create_running_workspace,
    delete_workspaces,
    sign_in,
    store_model_key,
)
from tests.fakes.anthropic import ScriptedModel, Turn, text, tool_use
from tests.fixtures.repos import make_repo
from tests.support.edge import Edge, running_edge

pytestmark = pytest.mark.timeout(600)


@pytest.fixture(scope="module")
def agent_edge(tmp_path_factory: pytest.TempPathFactory, model: ScriptedModel) -> Iterator[Edge]:
    """The local edge; its nodes reach the scripted model through the user's base URL."""
    data_dir = tmp_path_factory.mktemp("agent-tab") / ".sam"
    with running_edge(data_dir) as edge:
        yield edge
        delete_workspaces(edge, ALICE)


@pytest.fixture(scope="module")
def workspace(agent_edge: Edge, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    repo = make_repo(tmp_path_factory.mktemp("repos"), "agent-demo")
    created = create_running_workspace(agent_edge, ALICE, str(repo))
    # The local edge picks the host backend when `docker info` does not answer in time
    # (devtools/machine.py docker_answers): agent sessions then cannot run at all.
    assert created["backend"] == "docker", f"backend {created['backend']!r}: no Docker Engine?"
    return created


def in_container(workspace: dict[str, Any], *argv: str) -> str:
    done = subprocess.run(
        ["docker", "exec", workspace["container_id"], *argv], capture_output=True, text=True
    )
    return done.stdout


def test_a_conversation_with_the_agent_survives_a_reload_and_continues(
    context: BrowserContext,
    page: Page,
    agent_edge: Edge,
    model: ScriptedModel,
    workspace: dict[str, Any],
) -> None:
    sign_in(context, agent_edge, ALICE)
    page.goto(app_url(agent_edge, f"/workspaces/{workspace['id']}"))
    page.get_by_role("tab", name="Agent").click()
    # No agent credential yet: the tab says so and where to add one.
    blocked = page.get_by_test_id("agent-no-credential")
    expect(blocked).to_be_visible()
    settings = blocked.get_by_role("link", name="Open Settings → Agent")
    expect(settings).to_have_attribute("href", "/settings#agent")
    secret = "sk-ant-api03-" + secrets.token_urlsafe(32)
    store_model_key(agent_edge, ALICE, model, secret)

    # --- start in ask mode with a prompt: streamed answer, a permission, a tool card -------
    folder = workspace["remote_folder"]
    model.script(
        Turn(
            [
                text("I'll write it."),
                tool_use("Write", {"file_path": f"{folder}/hello.txt", "content": "hi\n"}),
            ]
        ),
        Turn([text("Wrote **hello.txt** for you.")]),
    )
    page.reload()  # the Agent tab is shown again (this tab remembers it)
    expect(page.get_by_role("tab", name="Agent")).to_have_attribute("aria-selected", "true")
    page.get_by_role("radio", name=re.compile("^Ask")).check()
    page.get_by_test_id("agent-prompt").fill("write hello.txt")
    page.get_by_role("button", name="Start session").click()

    expect(page.get_by_test_id("user-message")).to_have_text(re.compile("write hello.txt"))
    messages = page.get_by_test_id("agent-message")
    expect(messages.first).to_contain_text("I'll write it.")
    permission = page.get_by_test_id("permission")
    expect(permission).to_contain_text("Write")
    expect(page.get_by_test_id("agent-waiting")).to_have_text("1 question waits for you")
    # A second viewer (another tab) sees the same question; the first answer wins.
    other = context.new_page()
    other.goto(page.url)
    other.get_by_role("tab", name="Agent").click()
    expect(other.get_by_test_id("permission").locator("button")).to_have_count(3)
    other.get_by_role("tab", name="Terminals").click()  # the Agent tab's label still says
    expect(other.get_by_test_id("agent-tab-waiting")).to_have_text("· 1 waiting")
    # The options are the adapter's own ("Yes", "Yes, allow all edits…", "No"): allow once.
    permission.locator("button[data-kind=allow_once]").click()
    expect(page.get_by_test_id("permission-outcome")).to_contain_text("Yes — answered here")
    expect(page.get_by_test_id("agent-waiting")).to_have_count(0)
    expect(other.get_by_test_id("agent-tab-waiting")).to_have_count(0)
    other.get_by_role("tab", name="Agent").click()
    expect(other.get_by_test_id("permission-outcome")).to_contain_text("by another viewer")
    other.close()
    card = page.get_by_test_id("tool-card")
    expect(card).to_have_count(1)
    expect(card).to_have_attribute("data-status", "completed")
    expect(card.get_by_test_id("diff")).to_contain_text("+hi")
    # The answer is markdown: **hello.txt** is bold, not asterisks.
    expect(messages.last.locator("strong")).to_have_text("hello.txt")
    expect(page.locator(".agent-bar .badge")).to_have_text("idle")
    assert in_container(workspace, "cat", f"{folder}/hello.txt") == "hi\n"

    # --- reload: the conversation comes back from the node's replay ----------------------
    page.reload()
    expect(page.get_by_test_id("agent-connection")).to_have_text("Connected")
    expect(page.get_by_test_id("user-message")).to_have_count(1)
    expect(page.get_by_test_id("tool-card")).to_have_attribute("data-status", "completed")
    expect(page.get_by_test_id("permission-outcome")).to_contain_text("answered here")
    expect(messages.last.locator("strong")).to_have_text("hello.txt")

    # --- a dropped viewer resumes after its last seq: nothing missing, nothing twice -------
    viewers: list[str] = []
    page.on("websocket", lambda socket: viewers.append(socket.url))
    last_seq = page.evaluate(
        "() => [...globalThis.__samAgentSessions][0].snapshot().conversation.lastSeq"
    )
    page.evaluate("() => globalThis.__samAgentSessions.forEach((store) => store.drop())")
    expect(page.get_by_test_id("agent-connection")).to_have_text("Reconnecting…")
    expect(page.get_by_test_id("agent-connection")).to_have_text("Connected")
    [resumed] = [url for url in viewers if "/agent-sessions/" in url]
    assert parse_qs(urlsplit(resumed).query)["after"] == [str(last_seq)] and last_seq > 0
    expect(page.get_by_test_id("user-message")).to_have_count(1)
    expect(page.get_by_test_id("tool-card")).to_have_count(1)

    # --- a next prompt continues the same conversation -----------------------------------
    model.script(Turn([text("Still here: hello.txt says hi.")]))
    page.get_by_test_id("agent-prompt").fill("what did you write?")
    page.get_by_role("button", name="Send").click()
    expect(page.get_by_test_id("user-message")).to_have_count(2)
    expect(messages.last).to_contain_text("Still here: hello.txt says hi.")
    expect(page.locator(".agent-bar .badge")).to_have_text("idle")
    history = json.dumps(model.main_requests[-1]["messages"])
    assert "write hello.txt" in history and "what did you write?" in history

    # --- cancel a turn mid-stream ---------------------------------------------------------
    model.script(Turn([text("A long answer that never ends ...")], stall=True))
    page.get_by_test_id("agent-prompt").fill("talk")
    page.get_by_role("button", name="Send").click()
    expect(messages.last).to_contain_text("A long answer")
    page.get_by_role("button", name="Cancel turn").click()
    expect(page.get_by_text("The turn was cancelled.")).to_be_visible()
    expect(page.locator(".agent-bar .badge")).to_have_text("idle")

    # --- stop ---------------------------------------------------------------------------
    page.get_by_role("button", name="Stop session").click()
    expect(page.locator(".agent-bar .badge")).to_have_text("stopped")
    expect(page.get_by_text("The session was stopped.")).to_be_visible()
    expect(page.get_by_role("button", name="Start session")).to_be_visible()
    assert model.remaining == 0
    # The page's terminal tokens (in its URLs) and the stored key are in no log line.
    [token] = parse_qs(urlsplit(resumed).query)["token"]
    node_logs = [path.read_text() for path in agent_edge.data_dir.glob("nodes/*/agent.log")]
    assert node_logs, "the local node kept no agent.log"
    for log in [agent_edge.log(), *node_logs]:
        assert token not in log and secret not in log
    assert Path(page.url).name == workspace["id"]
