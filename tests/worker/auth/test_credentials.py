"""`/api/credentials` through the real edge, with a loopback Hetzner Cloud API and loopback
model APIs (the agent keys' checks are in test_agent_keys.py).

Covers: a Hetzner token checked before it is saved (accepted, rejected, Hetzner failing or
unreachable), hints only in answers, owners only, bad input, and that no secret reaches
the D1, KV or R2 files or the edge's log. Also `sam dev`'s generated encryption key: made
once, kept across restarts, and what was sealed before a restart still opens after it.
"""

import asyncio
import base64
import json
import stat
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import httpx
import pytest

from tests.fakes.anthropic import ScriptedModel
from tests.fakes.hetzner import FakeHetzner
from tests.fakes.openai import OpenAiModels
from tests.support.edge import Edge, free_port, running_edge, signed_in
from twin.d1 import D1Database
from twin.env import Env
from worker.auth import keys
from worker.auth.credentials import CredentialKind, open_credential
from worker.auth.crypto import DecryptionError
from worker.deployment import Deployment

# Every secret any test here sends; none may be found on disk or in the log afterwards.
SENT_SECRETS: list[str] = []
ANTHROPIC_KEY = "sk-ant-api03-" + "a" * 40 + "Zq9w"
OPENAI_KEYS = {"sk-short", "sk-team-one-0000000001", "sk-team-two-0000000002"}


def secret(value: str) -> str:
    SENT_SECRETS.append(value)
    return value


@pytest.fixture(scope="module")
def edge(tmp_path_factory: pytest.TempPathFactory, hetzner: FakeHetzner) -> Iterator[Edge]:
    data_dir: Path = tmp_path_factory.mktemp("credentials") / ".sam"
    with (
        ScriptedModel(keys={ANTHROPIC_KEY}) as anthropic,
        OpenAiModels(keys=OPENAI_KEYS) as openai,
        running_edge(
            data_dir,
            vars={
                "SAM_HETZNER_API_URL": hetzner.url,
                "SAM_ANTHROPIC_API_URL": anthropic.url,
                "SAM_OPENAI_API_URL": openai.url,
            },
        ) as running,
    ):
        yield running


@pytest.fixture(scope="module")
def alice(edge: Edge) -> Iterator[httpx.Client]:
    client = signed_in(edge, "alice")
    yield client
    client.close()


@pytest.fixture(scope="module")
def bob(edge: Edge) -> Iterator[httpx.Client]:
    client = signed_in(edge, "bob")
    yield client
    client.close()


def listed(client: httpx.Client) -> list[dict]:
    reply = client.get("/api/credentials")
    assert reply.status_code == 200, reply.text
    return reply.json()["credentials"]


def test_a_valid_hetzner_token_is_checked_then_saved_and_shown_as_a_hint(
    alice: httpx.Client, hetzner: FakeHetzner
) -> None:
    token = secret(hetzner.add_token())
    reply = alice.post(
        "/api/credentials", json={"kind": "hetzner", "label": "main", "secret": token}
    )
    assert reply.status_code == 201, reply.text
    saved = reply.json()
    assert set(saved) == {"id", "kind", "label", "hint", "base_url", "created_at"}
    assert (saved["kind"], saved["label"], saved["hint"]) == ("hetzner", "main", "…" + token[-4:])
    assert token not in reply.text
    checks = [call for call in hetzner.requests if call.token == token]
    assert [(c.method, c.path, c.status) for c in checks] == [("GET", "/v1/locations", 200)]
    mine = listed(alice)
    assert [c["id"] for c in mine] == [saved["id"]]
    assert mine[0] == saved
    assert token not in json.dumps(mine)


def test_a_rejected_hetzner_token_is_a_400_that_says_where_to_make_one(
    alice: httpx.Client, hetzner: FakeHetzner
) -> None:
    before = listed(alice)
    bogus = secret("bogus-token-" + "x" * 52)
    reply = alice.post("/api/credentials", json={"kind": "hetzner", "secret": bogus})
    assert reply.status_code == 400, reply.text
    body = reply.json()
    assert body["error"] == "invalid_credential"
    assert "rejected" in body["message"] and "Hetzner Cloud Console" in body["message"]
    assert "API tokens" in body["message"]
    assert bogus not in reply.text
    assert [call.status for call in hetzner.requests if call.token == bogus] == [401]
    assert listed(alice) == before


def test_hetzner_failing_is_a_502_and_nothing_is_saved(
    alice: httpx.Client, hetzner: FakeHetzner
) -> None:
    before = listed(alice)
    token = secret(hetzner.add_token())
    hetzner.fail_next("GET", "/v1/locations", 503, "unavailable", "service unavailable")
    reply = alice.post("/api/credentials", json={"kind": "hetzner", "secret": token})
    assert reply.status_code == 502, reply.text
    assert reply.json()["error"] == "hetzner_unavailable"
    assert "not saved" in reply.json()["message"]
    assert listed(alice) == before


def test_hetzner_unreachable_is_a_502_saying_so(tmp_path: Path) -> None:
    closed = f"http://127.0.0.1:{free_port()}"
    with running_edge(tmp_path / ".sam", vars={"SAM_HETZNER_API_URL": closed}) as edge:
        with closing(signed_in(edge, "carol")) as carol:
            token = "unreachable-token-" + "y" * 46
            reply = carol.post("/api/credentials", json={"kind": "hetzner", "secret": token})
            assert reply.status_code == 502, reply.text
            body = reply.json()
            assert body["error"] == "hetzner_unreachable"
            assert "Could not reach the Hetzner Cloud API" in body["message"]
            assert closed in body["message"]
            assert listed(carol) == []
        assert token not in edge.log()


def test_agent_keys_are_saved_without_calling_hetzner(
    alice: httpx.Client, hetzner: FakeHetzner
) -> None:
    calls = len(hetzner.requests)
    anthropic = secret(ANTHROPIC_KEY)
    openai = secret("sk-short")
    for kind, value in (("anthropic", anthropic), ("openai", openai)):
        reply = alice.post("/api/credentials", json={"kind": kind, "secret": f"  {value}\n"})
        assert reply.status_code == 201, reply.text
    assert len(hetzner.requests) == calls
    hints = {c["kind"]: c["hint"] for c in listed(alice)}
    # Pasted whitespace is trimmed; a short secret shows no characters at all.
    assert hints["anthropic"] == "…Zq9w" and hints["openai"] == "…"


def test_a_label_already_used_for_that_kind_is_a_409(alice: httpx.Client) -> None:
    first = alice.post(
        "/api/credentials",
        json={"kind": "openai", "label": "team", "secret": secret("sk-team-one-0000000001")},
    )
    assert first.status_code == 201
    again = alice.post(
        "/api/credentials",
        json={"kind": "openai", "label": "team", "secret": secret("sk-team-two-0000000002")},
    )
    assert again.status_code == 409 and again.json()["error"] == "credential_exists"
    assert [c["label"] for c in listed(alice) if c["kind"] == "openai"].count("team") == 1


def test_another_user_can_neither_see_nor_delete_mine(
    alice: httpx.Client, bob: httpx.Client
) -> None:
    mine = listed(alice)
    assert mine and listed(bob) == []
    for credential in mine:
        reply = bob.delete(f"/api/credentials/{credential['id']}")
        assert reply.status_code == 404
        assert reply.json()["error"] == "credential_not_found"
    assert listed(alice) == mine
    # An id that exists answers exactly like one that does not.
    unknown = bob.delete("/api/credentials/cr_0000000000000000")
    assert unknown.json() == bob.delete(f"/api/credentials/{mine[0]['id']}").json()


def test_only_a_signed_in_user_reaches_credentials(edge: Edge, alice: httpx.Client) -> None:
    with edge.client("api") as anonymous:
        assert anonymous.get("/api/credentials").status_code == 401
        body = {"kind": "openai", "secret": "sk-anonymous-0000000"}
        assert anonymous.post("/api/credentials", json=body).status_code == 401
        some_id = listed(alice)[0]["id"]
        assert anonymous.delete(f"/api/credentials/{some_id}").status_code == 401
    # A page on another origin riding on Alice's cookie.
    with edge.client("app") as forged:
        forged.headers["origin"] = "http://evil.example"
        forged.cookies.update(alice.cookies)
        body = {"kind": "openai", "label": "csrf", "secret": secret("sk-csrf-000000000000")}
        assert forged.post("/api/credentials", json=body).status_code == 403
        assert forged.delete(f"/api/credentials/{some_id}").status_code == 403
    assert "csrf" not in [c["label"] for c in listed(alice)]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"kind": "aws", "secret": "AKIA-not-a-kind-0000"}, "kind"),
        ({"kind": "HETZNER", "secret": "upper-case-kind-0000"}, "kind"),
        ({"secret": "no-kind-at-all-00000"}, "kind"),
        ({"kind": "openai"}, "secret"),
        ({"kind": "openai", "secret": ""}, "secret"),
        ({"kind": "openai", "secret": "   "}, "secret"),
        ({"kind": "openai", "secret": "sk-" + "z" * 5000}, "secret"),
        ({"kind": "openai", "secret": "sk-line\r\nX-Injected: 1"}, "secret"),
        ({"kind": "openai", "secret": "sk with spaces inside"}, "secret"),
        ({"kind": "openai", "secret": ["sk-in-a-list"]}, "secret"),
        ({"kind": "openai", "secret": "sk-ok-00000000", "label": "l" * 65}, "label"),
        ({"kind": "openai", "secret": "sk-ok-00000000", "label": "a\x00b"}, "label"),
        ({"kind": "openai", "secret": "sk-ok-00000000", "user_id": "u_other"}, "user_id"),
    ],
)
def test_bad_input_is_a_400_naming_the_field_never_echoing_the_secret(
    alice: httpx.Client, body: dict, field: str
) -> None:
    before = listed(alice)
    reply = alice.post("/api/credentials", json=body)
    assert reply.status_code == 400, reply.text
    answer = reply.json()
    assert answer["error"] == "invalid_request" and field in answer["message"]
    sent = body.get("secret")
    if isinstance(sent, str) and sent.strip():
        assert sent.strip() not in reply.text
    assert listed(alice) == before


def test_a_hostile_id_is_just_not_found(alice: httpx.Client) -> None:
    for hostile in ("' OR '1'='1", "%2e%2e%2fsigning_keys", "x" * 300):
        reply = alice.delete(f"/api/credentials/{hostile}")
        assert reply.status_code == 404
    assert listed(alice)


def test_deleting_my_own_credential(alice: httpx.Client) -> None:
    target = next(c for c in listed(alice) if c["kind"] == "anthropic")
    assert alice.delete(f"/api/credentials/{target['id']}").status_code == 204
    assert target["id"] not in [c["id"] for c in listed(alice)]
    assert alice.delete(f"/api/credentials/{target['id']}").status_code == 404


def test_no_secret_is_stored_or_logged_in_plaintext(edge: Edge) -> None:
    # Runs last in this module: every secret sent above, saved or refused.
    assert len(SENT_SECRETS) >= 8
    files = [
        path
        for path in edge.data_dir.rglob("*")
        if path.is_file() and path.name != "dev-secrets.json"
    ]
    assert any(path.parent.name == "d1" for path in files)
    assert any(path.parent.name == "kv" for path in files)
    stored = b"".join(path.read_bytes() for path in files)
    log = edge.log()
    # The log is the real one, with this module's own events in it.
    assert "request.done" in log and "credential.saved" in log
    for value in SENT_SECRETS:
        assert value.encode() not in stored, "a secret is stored in plaintext"
        assert value not in log, "a secret is in the edge log"


# --- sam dev's own encryption key ---------------------------------------------------------


def test_sam_dev_makes_its_key_once_and_keeps_it(tmp_path: Path, hetzner: FakeHetzner) -> None:
    data_dir = tmp_path / ".sam"
    token = hetzner.add_token()
    with running_edge(data_dir, vars={"SAM_HETZNER_API_URL": hetzner.url}) as edge:
        path = data_dir / "dev-secrets.json"
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        key = json.loads(path.read_text())["SAM_ENCRYPTION_KEY"]
        with closing(signed_in(edge, "dana")) as dana:
            saved = dana.post("/api/credentials", json={"kind": "hetzner", "secret": token})
            assert saved.status_code == 201, saved.text
        with edge.client("api") as api:
            kids = [k["kid"] for k in api.get("/.well-known/jwks.json").json()["keys"]]

    with running_edge(data_dir, vars={"SAM_HETZNER_API_URL": hetzner.url}) as edge:
        assert json.loads(path.read_text())["SAM_ENCRYPTION_KEY"] == key
        with closing(signed_in(edge, "dana")) as dana:
            assert [c["id"] for c in listed(dana)] == [saved.json()["id"]]
        with edge.client("api") as api:
            assert [k["kid"] for k in api.get("/.well-known/jwks.json").json()["keys"]] == kids

    # What was sealed before the restart opens with the key kept in dev-secrets.json.
    assert asyncio.run(_open_hetzner(data_dir, key, "dana")) == token
    assert asyncio.run(_open_signing_key(data_dir, key)) == kids[0]


async def _open_hetzner(data_dir: Path, key: str, login: str) -> str:
    database = D1Database(data_dir / "d1" / "sam.sqlite")
    try:
        env = Env({"DATABASE": database, "SAM_DOMAIN": "localhost", "SAM_ENCRYPTION_KEY": key})
        user = await database.prepare("SELECT id FROM users WHERE login = ?").bind(login).first()
        return await open_credential(Deployment.of(env), user["id"], CredentialKind.HETZNER)
    finally:
        database.close()


async def _open_signing_key(data_dir: Path, key: str) -> str:
    database = D1Database(data_dir / "d1" / "sam.sqlite")
    try:
        env = Env({"DATABASE": database, "SAM_DOMAIN": "localhost", "SAM_ENCRYPTION_KEY": key})
        return (await keys.active_key(Deployment.of(env))).kid
    finally:
        database.close()


def test_a_key_given_by_the_operator_wins_over_the_generated_one(tmp_path: Path) -> None:
    data_dir = tmp_path / ".sam"
    given = base64.urlsafe_b64encode(bytes(range(32))).decode()
    with (
        running_edge(data_dir, vars={"SAM_ENCRYPTION_KEY": given}) as edge,
        edge.client("api") as api,
    ):
        kid = api.get("/.well-known/jwks.json").json()["keys"][0]["kid"]
    generated = json.loads((data_dir / "dev-secrets.json").read_text())["SAM_ENCRYPTION_KEY"]
    assert generated != given
    # The signing key the edge made was sealed with the operator's key, not the generated one.
    assert asyncio.run(_open_signing_key(data_dir, given)) == kid
    with pytest.raises(DecryptionError):
        asyncio.run(_open_signing_key(data_dir, generated))
