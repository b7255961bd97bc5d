"""Projects and their chats in a real browser: the real local edge and local node agent, a
real workspace container, the real Claude Code adapter (claude-agent-acp from the tools
mount) through the node's model proxy, and the scripted Messages API on loopback
(tests/fakes/anthropic.py) as the model, stored as the user's own gateway.

The walk, as a user would go: sign in → Projects → New project → New chat with a first
message → the run's progress and the streamed answer → the agent asks before it writes
(the turn waits there) → reload mid-turn: the chat comes back from its history and viewer,
nothing twice → the question answered from the chat → the rest of the turn arrives → a
follow-up → a dropped viewer resumes after its last seq → a long history opens on its
newest page and pages back as the reader scrolls up → a viewer kept away while more came in
than a replay holds catches up over HTTP → Stop → a phone's width → rename → delete, which
names what goes.
"""

import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from playwright.sync_api import BrowserContext, Page, WebSocketRoute, expect

from tests.browser.conftest import VIEWPORT
from tests.browser.support import (
    PHONE,
    api_client,
    app_url,
    delete_workspaces,
    sign_in,
    store_model_key,
)
from tests.fakes.anthropic import ScriptedModel, Turn, text, tool_use
from tests.fixtures.repos import make_repo
from tests.support.edge import Edge, running_edge
from tests.support.wait import bearer
from wire.chat import MAX_BATCH_MESSAGES

pytestmark = pytest.mark.timeout(600)

LOGIN = "browser-chat"
# The page a chat opens on holds its newest FIRST_PAGE_MESSAGES (50); older pages hold
# PAGE_MESSAGES (200) each (pages/src/projects/openingChat.ts). The filler spans three.
FIRST_PAGE_MESSAGES, PAGE_MESSAGES = 50, 200
HISTORY_FILLER = 450
# More than the viewer replays to a reconnect (MAX_REPLAY_MESSAGES, 500): paged over HTTP.
MISSED_FILLER = 600
FILLER_FIRST_SEQ = 100_000  # agent frame seqs far above the session's own
# A run may bring up a workspace and start the adapter before the first answer.
CHAT_READY_MS = 240_000


@pytest.fixture(scope="module")
def chat_edge(tmp_path_factory: pytest.TempPathFactory, model: ScriptedModel) -> Iterator[Edge]:
    """The local edge; its nodes reach the scripted model through the user's base URL."""
    data_dir = tmp_path_factory.mktemp("project-chat") / ".sam"
    roots = str(tmp_path_factory.getbasetemp())
    with running_edge(data_dir, vars={"SAM_LOCAL_REPOSITORY_ROOTS": roots}) as edge:
        yield edge
        delete_workspaces(edge, LOGIN)


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_repo(tmp_path_factory.mktemp("repos"), "chat-demo")


def ingest_filler(edge: Edge, project_id: str, chat_id: str, count: int, first: int = 0) -> None:
    """Answer chunks `line {first}` … into the chat, `count` of them, as its node's outbox
    sends them (its callback token, where the local node launcher keeps it for its agent)."""
    with api_client(edge, LOGIN) as client:
        chat = client.get(f"/api/projects/{project_id}/chats/{chat_id}").json()
        node_id = client.get(f"/api/workspaces/{chat['workspace_id']}").json()["node_id"]
    token = (edge.data_dir / "nodes" / node_id / "state" / "callback-token").read_text().strip()
    now = datetime.now(UTC).isoformat()
    messages = [
        {
            "id": f"filler:{n}",
            "project_id": project_id,
            "chat_id": chat_id,
            "frame": {
                "seq": FILLER_FIRST_SEQ + n,
                "type": "update",
                "update": {
                    "sessionUpdate": "agent_message_chunk",
                    "messageId": f"filler-{n // 50}",
                    "content": {"type": "text", "text": f"line {n}\n\n"},
                },
            },
            "created_at": now,
        }
        for n in range(first, first + count)
    ]
    with edge.client("api") as node:
        for start in range(0, count, MAX_BATCH_MESSAGES):
            batch = {"messages": messages[start : start + MAX_BATCH_MESSAGES]}
            reply = node.post(
                f"/api/workspaces/{chat['workspace_id']}/chat-messages",
                json=batch,
                headers=bearer(token),
            )
            assert reply.status_code == 200, reply.text
            assert reply.json()["accepted"] == len(batch["messages"]), reply.text


def conversation_text(page: Page) -> str:
    return page.get_by_test_id("conversation").inner_text()


def test_a_project_chat_streams_survives_a_reload_mid_turn_and_takes_a_follow_up(
    context: BrowserContext, page: Page, chat_edge: Edge, model: ScriptedModel, repo: Path
) -> None:
    store_model_key(chat_edge, LOGIN, model, "sk-ant-api03-" + "c" * 43)
    sign_in(context, chat_edge, LOGIN)
    viewers: list[str] = []
    page.on("websocket", lambda socket: viewers.append(socket.url))

    # --- Projects is the first screen; a new project from a local repository -------------
    page.goto(app_url(chat_edge))
    expect(page.get_by_role("heading", name="Projects", exact=True)).to_be_visible()
    page.get_by_role("link", name="New project").first.click()
    page.get_by_label("Repository").fill(str(repo))
    page.get_by_label("Name").fill("Chat demo")
    page.get_by_label("Local node").check()
    page.get_by_role("radio", name=re.compile("^Ask")).check()
    page.get_by_role("button", name="Create project").click()
    expect(page).to_have_url(re.compile(r"/projects/[A-Za-z0-9_-]+$"))
    expect(page.get_by_role("heading", name="Chat demo")).to_be_visible()
    expect(page.get_by_role("navigation", name="Chats")).to_contain_text("No chats yet.")

    # --- New chat: the prompt at once, the run's progress, then the answer streams -------
    write = tool_use("Bash", {"command": "printf hi > hello.txt", "description": "write it"})
    model.script(
        Turn([text("I'll write hello.txt."), write]),
        Turn([text("Wrote **hello.txt** for you.")]),
    )
    composer = page.get_by_label("First message")
    composer.fill("write hello.txt")
    composer.press("Control+Enter")  # the keyboard sends, as the button does
    expect(page).to_have_url(re.compile(r"/projects/[A-Za-z0-9_-]+/chats/[A-Za-z0-9_-]+$"))
    expect(page.get_by_test_id("user-message")).to_have_text(re.compile("write hello.txt"))
    expect(page.get_by_test_id("run-progress")).to_be_visible()
    expect(page.get_by_test_id("chat-row")).to_have_count(1)
    answer = page.get_by_test_id("agent-message")
    expect(answer.first).to_contain_text("I'll write hello.txt.", timeout=CHAT_READY_MS)
    # Ask mode: the turn waits on the question, in the project chat.
    permission = page.get_by_test_id("permission")
    expect(permission.locator("button[data-kind=allow_once]")).to_be_visible()
    expect(page.get_by_test_id("chat-waiting")).to_have_text("1 question waits for you")
    expect(page.get_by_role("link", name="Workspace terminals")).to_have_attribute(
        "href", re.compile(r"^/workspaces/w[0-9a-f]+$")
    )
    # The run's last step: nothing more comes until the question is answered.
    expect(page.get_by_test_id("run-progress")).to_contain_text("Chat connected")
    before_reload = conversation_text(page)

    # --- reload mid-turn: the same chat from its history, then live; nothing twice -------
    page.reload()
    expect(page.get_by_test_id("chat-connection")).to_have_text("Live")
    expect(
        page.get_by_test_id("permission").locator("button[data-kind=allow_once]")
    ).to_be_visible()
    assert conversation_text(page) == before_reload
    expect(page.get_by_test_id("user-message")).to_have_count(1)
    expect(page.get_by_test_id("run-progress")).to_have_count(1)
    resumed = [url for url in viewers if "chat=" in url][-1]
    assert int(parse_qs(urlsplit(resumed).query)["after"][0]) > 0, resumed

    # --- the question answered from the chat: the rest of the turn arrives ---------------
    page.get_by_test_id("permission").locator("button[data-kind=allow_once]").click()
    expect(page.get_by_test_id("permission-outcome")).to_contain_text("answered here")
    expect(answer.last.locator("strong")).to_have_text("hello.txt")
    expect(page.get_by_test_id("chat-waiting")).to_have_count(0)
    whole = conversation_text(page)
    assert whole.count("I'll write hello.txt.") == 1, whole
    assert whole.count("Wrote hello.txt for you.") == 1, whole
    expect(page.get_by_test_id("tool-card")).to_have_count(1)

    # --- a follow-up continues the conversation -------------------------------------------
    model.script(Turn([text("Still here: hello.txt says hi.")]))
    follow_up = page.get_by_label("Follow-up")
    follow_up.fill("what did you write?")
    page.get_by_role("button", name="Send", exact=True).click()
    expect(page.get_by_test_id("user-message")).to_have_count(2)
    expect(answer.last).to_contain_text("Still here: hello.txt says hi.")
    expect(follow_up).to_have_value("")
    assert "write hello.txt" in str(model.main_requests[-1]["messages"])
    assert model.remaining == 0

    # --- a dropped viewer resumes after its last seq: nothing missing, nothing twice -------
    # (The turn's last frames, which show nothing, may still come in meanwhile.)
    last_seq = "() => [...globalThis.__samProjectChats][0].snapshot().conversation.lastSeq"
    before = page.evaluate(last_seq)
    shown = conversation_text(page)
    page.evaluate("() => globalThis.__samProjectChats.forEach((store) => store.drop())")
    expect(page.get_by_test_id("chat-connection")).to_have_text("Reconnecting…")
    expect(page.get_by_test_id("chat-connection")).to_have_text("Live")
    resumed = [url for url in viewers if "chat=" in url][-1]
    after = int(parse_qs(urlsplit(resumed).query)["after"][0])
    assert before <= after <= page.evaluate(last_seq), resumed
    assert conversation_text(page) == shown

    # --- a long history opens on its newest page and pages back on request -----------------
    chat_url = page.url
    project_id, chat_id = urlsplit(chat_url).path.split("/")[2::2]
    ingest_filler(chat_edge, project_id, chat_id, HISTORY_FILLER)
    page.reload()
    expect(page.get_by_test_id("agent-message").last).to_contain_text(f"line {HISTORY_FILLER - 1}")
    expect(page.get_by_test_id("user-message")).to_have_count(0)  # the first page ends before
    older = page.get_by_role("button", name="Load older messages")
    expect(older).to_be_visible()
    # Scrolled to the top, the page before comes in above, and what was read stays put.
    first_shown = HISTORY_FILLER - FIRST_PAGE_MESSAGES
    expect(page.get_by_test_id("agent-message").first).to_contain_text(f"line {first_shown}")
    expect(page.get_by_text(f"line {first_shown - 1}", exact=True)).to_have_count(0)
    top_line = page.get_by_text(f"line {first_shown + 5}", exact=False).first
    page.get_by_test_id("chat-scroll").evaluate("(box) => { box.scrollTop = 0; }")
    expect(page.get_by_test_id("agent-message").first).to_contain_text(
        f"line {first_shown - PAGE_MESSAGES}"
    )
    expect(top_line).to_be_in_viewport()
    while older.count():
        older.click()
        expect(page.get_by_role("button", name="Loading older messages…")).to_have_count(0)
    expect(page.get_by_test_id("user-message")).to_have_count(2)
    assert conversation_text(page).count("I'll write hello.txt.") == 1

    # --- kept away while more than a replay holds came in: paged over HTTP, then live ------
    refusing = True

    def chat_viewer(socket: WebSocketRoute) -> None:
        if refusing:
            socket.close()  # as a network that keeps dropping it would
        else:
            socket.connect_to_server()

    page.route_web_socket(re.compile(r"/ws\?chat="), chat_viewer)
    pages_read: list[str] = []
    page.on("request", lambda request: pages_read.append(request.url))
    page.evaluate("() => globalThis.__samProjectChats.forEach((store) => store.drop())")
    ingest_filler(chat_edge, project_id, chat_id, MISSED_FILLER, first=HISTORY_FILLER)
    refusing = False
    last_line = f"line {HISTORY_FILLER + MISSED_FILLER - 1}"
    expect(page.get_by_test_id("agent-message").last).to_contain_text(last_line)
    expect(page.get_by_test_id("chat-connection")).to_have_text("Live")
    assert any("/messages?" in url and "after=" in url for url in pages_read), pages_read
    lines = conversation_text(page).split("\n")
    for n in (0, HISTORY_FILLER - 1, HISTORY_FILLER, HISTORY_FILLER + MISSED_FILLER - 1):
        assert lines.count(f"line {n}") == 1, f"line {n}"

    # --- Stop: the chat stays readable, and a next message would start afresh -------------
    page.get_by_role("button", name="Stop", exact=True).click()
    expect(page.locator(".chat .agent-bar .badge").first).to_have_text("stopped")
    expect(page.get_by_role("button", name="Send and restart")).to_be_visible()
    expect(page.get_by_test_id("chat-row").locator(".badge")).to_have_text("stopped")

    # --- on a phone, the chat (sidebar above it) does not scroll sideways -------------------
    page.set_viewport_size(PHONE)
    expect(page.get_by_role("navigation", name="Chats")).to_be_visible()
    width = page.evaluate("() => document.documentElement.scrollWidth")
    assert width <= PHONE["width"], f"the chat scrolls sideways at 375 px ({width} px wide)"
    page.set_viewport_size(VIEWPORT)

    # --- rename, then delete: the confirmation names what goes -----------------------------
    page.get_by_role("button", name="Rename").click()
    page.get_by_label("New name").fill("Chat demo renamed")
    page.get_by_role("button", name="Save name").click()
    expect(page.get_by_role("heading", name="Chat demo renamed")).to_be_visible()
    page.get_by_role("button", name="Delete", exact=True).click()
    page.get_by_role("button", name="Delete Chat demo renamed and its 1 chat").click()
    expect(page.get_by_role("heading", name="Projects", exact=True)).to_be_visible()
    expect(page.get_by_test_id("project-row")).to_have_count(0)


def test_bad_input_and_unknown_addresses_say_what_to_do(
    context: BrowserContext, page: Page, chat_edge: Edge
) -> None:
    sign_in(context, chat_edge, LOGIN)
    page.goto(app_url(chat_edge, "/projects/new"))
    page.get_by_role("button", name="Create project").click()
    expect(page.get_by_role("alert")).to_contain_text("Enter the repository's URL")
    expect(page.get_by_label("Repository")).to_be_focused()
    page.get_by_label("Repository").fill("ftp://example.com/nope.git")
    page.get_by_role("button", name="Create project").click()
    expect(page.get_by_role("alert")).to_be_visible()
    expect(page).to_have_url(re.compile(r"/projects/new$"))

    # Someone else's project and a made-up one look the same: not found.
    with api_client(chat_edge, "browser-chat-other") as other:
        made = other.post("/api/projects", json={"repository": "https://example.com/x.git"})
        assert made.status_code == 201, made.text
        theirs: dict[str, Any] = made.json()
    for project_id in (theirs["id"], "p-made-up"):
        page.goto(app_url(chat_edge, f"/projects/{project_id}"))
        expect(page.get_by_role("alert")).to_contain_text(re.compile("project", re.I))
        expect(page.get_by_role("button", name="Try again")).to_be_visible()

    # A chat that does not exist in one's own project: the chat says so, and the project's
    # header and chat list (which wait for the chat's first page) still come.
    with api_client(chat_edge, LOGIN) as client:
        made = client.post(
            "/api/projects", json={"repository": "https://example.com/mine.git", "name": "Mine"}
        )
        assert made.status_code == 201, made.text
        mine: dict[str, Any] = made.json()
    page.goto(app_url(chat_edge, f"/projects/{mine['id']}/chats/c-made-up"))
    expect(page.get_by_role("alert")).to_contain_text(re.compile("chat", re.I))
    expect(page.get_by_role("button", name="Try again")).to_be_visible()
    expect(page.get_by_role("heading", name="Mine")).to_be_visible()
    expect(page.get_by_role("navigation", name="Chats")).to_contain_text("No chats yet.")
