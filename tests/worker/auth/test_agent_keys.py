"""Agent keys in Settings → Agent, through the real edge, checked against loopback model APIs
(the scripted Anthropic API and OpenAI's model list) before they are saved; and the callback
that hands the owner's Anthropic key to the node agent of one of their workspaces."""

from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.fakes.anthropic import ScriptedModel
from tests.fakes.openai import OpenAiModels
from tests.support.edge import Edge, free_port, running_edge, signed_in
from tests.support.placed import PlacedWorkspace

API_KEY = "sk-ant-api03-" + "k" * 40 + "AbCd"
OAUTH_TOKEN = "sk-ant-oat01-" + "o" * 40 + "WxYz"
GATEWAY_KEY = "gw-team-key-0123456789"
REFUSED_KEY = "sk-ant-api03-" + "r" * 40 + "Nope"
OPENAI_KEY = "sk-proj-" + "p" * 40
SENT = [API_KEY, OAUTH_TOKEN, GATEWAY_KEY, REFUSED_KEY, OPENAI_KEY]


@pytest.fixture(scope="module")
def anthropic() -> Iterator[ScriptedModel]:
    with ScriptedModel(keys={API_KEY, OAUTH_TOKEN}) as model:
        yield model


@pytest.fixture(scope="module")
def gateway() -> Iterator[ScriptedModel]:
    """A user's own gateway in front of the model API, with its own keys."""
    with ScriptedModel(keys={GATEWAY_KEY}) as model:
        yield model


@pytest.fixture(scope="module")
def openai() -> Iterator[OpenAiModels]:
    with OpenAiModels(keys={OPENAI_KEY}) as fake:
        yield fake


@pytest.fixture(scope="module")
def edge(
    tmp_path_factory: pytest.TempPathFactory, anthropic: ScriptedModel, openai: OpenAiModels
) -> Iterator[Edge]:
    data_dir: Path = tmp_path_factory.mktemp("agent-keys") / ".sam"
    upstreams = {"SAM_ANTHROPIC_API_URL": anthropic.url, "SAM_OPENAI_API_URL": openai.url}
    with running_edge(data_dir, vars=upstreams) as running:
        yield running


@pytest.fixture
def user(edge: Edge, request: pytest.FixtureRequest) -> Iterator[httpx.Client]:
    """A fresh user per test, so that what one test saved does not show in another."""
    with closing(signed_in(edge, f"u{abs(hash(request.node.name)) % 10**8}")) as client:
        yield client


def mine(client: httpx.Client) -> list[dict[str, Any]]:
    return client.get("/api/credentials").json()["credentials"]


def save(client: httpx.Client, **body: Any) -> httpx.Response:
    return client.post("/api/credentials", json=body)


def test_an_api_key_the_upstream_accepts_is_saved_and_shown_as_a_hint(
    user: httpx.Client, anthropic: ScriptedModel
) -> None:
    reply = save(user, kind="anthropic", secret=API_KEY)
    assert reply.status_code == 201, reply.text
    saved = reply.json()
    assert (saved["kind"], saved["hint"], saved["base_url"]) == ("anthropic", "…AbCd", None)
    assert API_KEY not in reply.text
    assert anthropic.seen_keys[-1] == API_KEY  # sent as x-api-key: the fake reads it there
    assert mine(user) == [saved]


def test_an_oauth_token_is_checked_as_a_bearer_with_the_oauth_beta(
    user: httpx.Client, anthropic: ScriptedModel
) -> None:
    reply = save(user, kind="anthropic", secret=OAUTH_TOKEN)
    assert reply.status_code == 201, reply.text
    assert anthropic.seen_keys[-1] == OAUTH_TOKEN


def test_a_key_the_upstream_refuses_is_a_400_and_nothing_is_stored(
    user: httpx.Client, anthropic: ScriptedModel
) -> None:
    reply = save(user, kind="anthropic", secret=REFUSED_KEY)
    assert reply.status_code == 400, reply.text
    body = reply.json()
    assert body["error"] == "invalid_credential"
    assert "rejected this key (401)" in body["message"] and "sk-ant-api" in body["message"]
    assert REFUSED_KEY not in reply.text
    assert anthropic.seen_keys[-1] == REFUSED_KEY
    assert mine(user) == []


def test_hello_is_not_an_openai_key(user: httpx.Client, openai: OpenAiModels) -> None:
    reply = save(user, kind="openai", secret="hello")
    assert reply.status_code == 400, reply.text
    assert reply.json()["error"] == "invalid_credential"
    assert "OpenAI" in reply.json()["message"] and openai.seen_keys[-1] == "hello"
    assert mine(user) == []
    good = save(user, kind="openai", secret=OPENAI_KEY)
    assert good.status_code == 201, good.text
    assert [c["kind"] for c in mine(user)] == ["openai"]


def test_a_key_of_neither_shape_is_refused_without_asking_anthropic(
    user: httpx.Client, anthropic: ScriptedModel
) -> None:
    calls = len(anthropic.seen_keys)
    reply = save(user, kind="anthropic", secret="sk-proj-looks-like-openai-000")
    assert reply.status_code == 400
    assert "does not look like an Anthropic key" in reply.json()["message"]
    assert len(anthropic.seen_keys) == calls and mine(user) == []


def test_a_gateway_base_url_checks_the_key_there_and_is_kept(
    user: httpx.Client, anthropic: ScriptedModel, gateway: ScriptedModel
) -> None:
    calls = len(anthropic.seen_keys)
    reply = save(user, kind="anthropic", secret=GATEWAY_KEY, base_url=gateway.url + "/")
    assert reply.status_code == 201, reply.text
    assert reply.json()["base_url"] == gateway.url  # the trailing slash is dropped
    assert gateway.seen_keys == [GATEWAY_KEY] and len(anthropic.seen_keys) == calls


@pytest.mark.parametrize(
    ("base_url", "says"),
    [
        ("ftp://gateway.example.com", "https://"),
        ("http://gateway.example.com", "must use https"),
        ("https://user:pw@gateway.example.com", "must not carry a user"),
        ("https://gateway.example.com/?key=1", "must not carry a user"),
        ("https://gateway.example.com:99999", "is not a URL"),
        ("gateway.example.com", "https://"),
        ("https://" + "g" * 600 + ".com", "over 512 characters"),
    ],
)
def test_a_bad_base_url_is_refused_before_any_call(
    user: httpx.Client, gateway: ScriptedModel, base_url: str, says: str
) -> None:
    calls = len(gateway.seen_keys)
    reply = save(user, kind="anthropic", secret=GATEWAY_KEY, base_url=base_url)
    assert reply.status_code == 400, reply.text
    assert reply.json()["error"] == "invalid_base_url" and says in reply.json()["message"]
    assert len(gateway.seen_keys) == calls and mine(user) == []


def test_a_base_url_is_for_anthropic_keys_only(user: httpx.Client) -> None:
    reply = save(user, kind="openai", secret=OPENAI_KEY, base_url="https://gateway.example.com")
    assert reply.status_code == 400 and reply.json()["error"] == "invalid_base_url"


def test_an_unreachable_upstream_is_a_502_and_nothing_is_stored(user: httpx.Client) -> None:
    closed = f"http://127.0.0.1:{free_port()}"
    reply = save(user, kind="anthropic", secret=GATEWAY_KEY, base_url=closed)
    assert reply.status_code == 502, reply.text
    body = reply.json()
    assert body["error"] == "model_api_unreachable" and closed in body["message"]
    assert "not saved" in body["message"] and mine(user) == []


def test_an_upstream_that_is_not_a_model_api_is_a_502(user: httpx.Client, edge: Edge) -> None:
    # The edge itself: it answers GET /v1/models with a 404.
    reply = save(
        user, kind="anthropic", secret=GATEWAY_KEY, base_url=f"http://127.0.0.1:{edge.port}"
    )
    assert reply.status_code == 502, reply.text
    assert reply.json()["error"] == "model_api_unavailable"
    assert "answered 404" in reply.json()["message"] and mine(user) == []


# --- the node agent's callback -------------------------------------------------------------


def fetch_credential(edge: Edge, workspace_id: str, token: str | None) -> httpx.Response:
    with edge.client("api") as api:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return api.get(f"/api/workspaces/{workspace_id}/agent-credential", headers=headers)


def test_the_workspace_s_node_gets_the_owner_s_key_and_nobody_else_does(
    edge: Edge, gateway: ScriptedModel
) -> None:
    with closing(signed_in(edge, "keyowner")) as owner, closing(signed_in(edge, "other")):
        placed = PlacedWorkspace(edge, "keyowner", "1a2b3c4d5e6f")
        stranger = PlacedWorkspace(edge, "other", "6f5e4d3c2b1a")
        missing = fetch_credential(edge, placed.workspace_id, placed.node_token)
        assert missing.status_code == 409, missing.text
        assert missing.json()["error"] == "agent_credential_missing"
        assert "Settings → Agent" in missing.json()["message"]

        assert save(owner, kind="anthropic", secret=GATEWAY_KEY, base_url=gateway.url).is_success
        reply = fetch_credential(edge, placed.workspace_id, placed.node_token)
        assert reply.status_code == 200, reply.text
        assert reply.json() == {"kind": "api_key", "secret": GATEWAY_KEY, "base_url": gateway.url}
        assert reply.headers["cache-control"] == "no-store"
        # Another node's token, no token, a user's session: refused.
        wrong_node = fetch_credential(edge, placed.workspace_id, stranger.node_token)
        assert wrong_node.status_code == 403
        assert fetch_credential(edge, placed.workspace_id, None).status_code == 401
        assert owner.get(f"/api/workspaces/{placed.workspace_id}/agent-credential").is_error
        for made in (placed, stranger):
            made.close()


def test_an_oauth_token_reaches_the_agent_as_such(edge: Edge) -> None:
    with closing(signed_in(edge, "oauthowner")) as owner:
        placed = PlacedWorkspace(edge, "oauthowner", "0a0b0c0d0e0f")
        assert save(owner, kind="anthropic", secret=OAUTH_TOKEN).status_code == 201
        reply = fetch_credential(edge, placed.workspace_id, placed.node_token)
        assert reply.json() == {"kind": "oauth_token", "secret": OAUTH_TOKEN, "base_url": None}
        placed.close()


def test_no_agent_key_is_stored_or_logged_in_plaintext(edge: Edge) -> None:
    # Runs last in this module.
    stored = b"".join(
        path.read_bytes()
        for path in edge.data_dir.rglob("*")
        if path.is_file() and path.name != "dev-secrets.json"
    )
    log = edge.log()
    assert "credential.saved" in log and "agent_credential.issued" in log
    for value in SENT:
        assert value.encode() not in stored and value not in log
