"""What the project chat's end-to-end tests share: a signed-in user with the scripted model
stored as their own gateway, projects and chats through the API, and a chat's history read
back page by page, as the web app reads it.

    user = ChatUser.sign_in(edge, "alice", model)
    project = user.project(repository, provider="local", permission_mode="ask")
    chat = user.new_chat(project["id"], "write hello.txt")
"""

from __future__ import annotations

import asyncio
import json
import secrets
from dataclasses import dataclass
from typing import Any

import aiohttp

from tests.e2e.browser import Browser
from tests.fakes.anthropic import ScriptedModel
from tests.support.chat_viewer import FRAME_TIMEOUT_SECONDS, Message
from tests.support.edge import Edge
from tests.support.wait import wait_for

CHAT_READY_SECONDS = 300.0  # a run may provision a node, a workspace and the adapter
CHAT_STOPPED_SECONDS = 60.0
WARM_TIMEOUT_SECONDS = 3  # the edge's warm window: a node without workspaces goes soon after
TEARDOWN_TIMEOUT_SECONDS = 60.0


@dataclass
class ChatUser:
    browser: Browser

    @classmethod
    def sign_in(cls, edge: Edge, login: str, model: ScriptedModel) -> ChatUser:
        browser = Browser(edge)
        browser.dev_login(login)
        # The scripted model stands where a user's own gateway would (Settings → Agent).
        key = {
            "kind": "anthropic",
            "secret": "sk-ant-api03-" + secrets.token_urlsafe(32),
            "base_url": model.url,
        }
        stored = browser.post("/api/credentials", json=key)
        assert stored.status_code == 201, stored.text
        return cls(browser)

    @property
    def session(self) -> str:
        return self.browser.session

    def ok(self, method: str, path: str, status: int, **kwargs: Any) -> Any:
        answer = self.browser.request(method, path, **kwargs)
        assert answer.status_code == status, f"{method} {path}: {answer.status_code} {answer.text}"
        return answer.json() if answer.content else None

    def project(self, repository: str, **defaults: str) -> dict[str, Any]:
        return self.ok("POST", "/api/projects", 201, json={"repository": repository, **defaults})

    def new_chat(self, project_id: str, message: str) -> dict[str, Any]:
        return self.ok("POST", f"/api/projects/{project_id}/chats", 201, json={"message": message})

    def chat(self, project_id: str, chat_id: str) -> dict[str, Any]:
        return self.ok("GET", f"/api/projects/{project_id}/chats/{chat_id}", 200)

    def follow_up(self, project_id: str, chat_id: str, text: str) -> dict[str, Any]:
        path = f"/api/projects/{project_id}/chats/{chat_id}/messages"
        return self.ok("POST", path, 202, json={"text": text})

    def answer(self, project_id: str, chat_id: str, request_id: str, option_id: str) -> None:
        path = f"/api/projects/{project_id}/chats/{chat_id}/permissions/{request_id}"
        self.ok("POST", path, 202, json={"option_id": option_id})

    def history(self, project_id: str, chat_id: str, page: int = 100) -> list[dict[str, Any]]:
        """Every message of the chat through the paged read API, oldest first."""
        messages: list[dict[str, Any]] = []
        while True:
            path = f"/api/projects/{project_id}/chats/{chat_id}/messages"
            params = {"after": messages[-1]["seq"] if messages else 0, "limit": page}
            answer = self.ok("GET", path, 200, params=params)
            messages += answer["messages"]
            if not answer["has_more"]:
                return messages

    def wait_for_status(
        self, project_id: str, chat_id: str, status: str, timeout: float
    ) -> dict[str, Any]:
        def reached() -> dict[str, Any] | None:
            chat = self.chat(project_id, chat_id)
            assert chat["status"] != "failed" or status == "failed", self.failure(chat)
            return chat if chat["status"] == status else None

        return wait_for(reached, f"chat {chat_id} to be {status}", timeout)

    def failure(self, chat: dict[str, Any]) -> str:
        """What a failed chat says: its run, and its last system message."""
        path = f"/api/projects/{chat['project_id']}/chats/{chat['id']}"
        run = self.browser.get(f"{path}/run").text
        return f"chat failed: {chat}\nrun: {run}"

    def workspace(self, workspace_id: str) -> dict[str, Any]:
        return self.ok("GET", f"/api/workspaces/{workspace_id}", 200)

    def delete_workspace(self, workspace_id: str) -> None:
        deleted = self.browser.request("DELETE", f"/api/workspaces/{workspace_id}")
        assert deleted.status_code == 204, deleted.text

    async def session_frames(self, workspace_id: str, session_id: str) -> list[dict[str, Any]]:
        """Every frame of the workspace's agent session as the node keeps it (its viewer
        from seq 0 through the ws-{id} proxy, up to the session's last_seq at the call)."""
        token = self.ok("POST", "/api/terminal/token", 200, json={"workspace_id": workspace_id})
        edge = self.browser.edge
        headers = {"host": f"ws-{workspace_id}.{edge.domain}", "origin": self.browser.origin}
        base = f"http://127.0.0.1:{edge.port}/workspaces/{workspace_id}/agent-sessions/{session_id}"
        params = {"token": token["token"]}
        async with aiohttp.ClientSession(headers=headers) as http:
            async with http.get(base, params=params) as answer:
                assert answer.status == 200, await answer.text()
                last_seq = (await answer.json())["last_seq"]
            frames: list[dict[str, Any]] = []
            async with http.ws_connect(f"{base}/ws", params={**params, "after": "0"}) as ws:
                while not frames or frames[-1].get("seq", 0) < last_seq:
                    received = await asyncio.wait_for(ws.receive(), FRAME_TIMEOUT_SECONDS)
                    assert received.type is aiohttp.WSMsgType.TEXT, received
                    frames.append(json.loads(received.data))
        return frames

    def wait_for_teardown(self, node_ids: set[str]) -> None:
        """Every node in `node_ids` is gone (its warm window passed, its VM deleted)."""
        for node_id in node_ids:
            wait_for(
                lambda: self.browser.get(f"/api/nodes/{node_id}").status_code == 404,  # noqa: B023
                f"node {node_id} to be torn down",
                WARM_TIMEOUT_SECONDS + TEARDOWN_TIMEOUT_SECONDS,
            )


def agent_frames_in_chat(messages: list[Message], session_id: str) -> list[dict[str, Any]]:
    """The agent session's frames as the chat holds them, in seq order."""
    return [m["frame"] for m in messages if m["id"].startswith(f"{session_id}:")]


def shown_in_chat(frames: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The node's frames a chat holds under their own id: all but the echoes of prompts the
    control plane sent (it showed those itself, when the API took them)."""
    return [f for f in frames if not (f["type"] == "prompt" and f.get("prompt_id"))]


def option(request: dict[str, Any], kind: str) -> str:
    """The optionId of a permission request's option of `kind` (allow_once, reject_once…)."""
    return next(o["optionId"] for o in request["options"] if o["kind"] == kind)
