"""worker/auth/crypto.py: AES-256-GCM with the owner and kind bound in, and its key setting.

The row-level cases run on the real D1 twin, with the migrations applied, so "a ciphertext
moved to another user's row" is a real UPDATE on a real credentials table.
"""

import base64
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from twin import env as local_env
from twin.clock import ManualClock
from twin.wrangler import load
from worker.auth.credentials import (
    CredentialKind,
    CredentialMissing,
    CredentialUnreadable,
    open_credential,
    save_credential,
)
from worker.auth.crypto import (
    KEY_BYTES,
    NONCE_BYTES,
    Cipher,
    DecryptionError,
    Sealed,
    generate_key,
    parse_key,
)
from worker.auth.users import upsert_local_user
from worker.config import Config, ConfigError
from worker.deployment import Deployment
from worker.http_errors import status_for

ROOT = Path(__file__).resolve().parents[3]
SECRET = b"hcloud-token-0123456789abcdef0123456789abcdef0123456789abcdef0123"


@pytest.fixture
def cipher() -> Cipher:
    return Cipher(parse_key(generate_key()))


async def test_round_trip(cipher: Cipher) -> None:
    sealed = await cipher.seal("u_alice", "hetzner", SECRET)
    assert await cipher.open("u_alice", "hetzner", sealed) == SECRET
    assert SECRET not in sealed.ciphertext
    assert len(sealed.nonce) == NONCE_BYTES


async def test_every_value_gets_its_own_nonce(cipher: Cipher) -> None:
    sealed = [await cipher.seal("u_alice", "hetzner", SECRET) for _ in range(50)]
    assert len({s.nonce for s in sealed}) == 50
    assert len({s.ciphertext for s in sealed}) == 50


@pytest.mark.parametrize(
    ("owner", "kind"),
    [("u_bob", "hetzner"), ("u_alice", "anthropic"), ("system", "hetzner"), ("u_alic", "ehetzner")],
)
async def test_another_owner_or_kind_does_not_open(cipher: Cipher, owner: str, kind: str) -> None:
    sealed = await cipher.seal("u_alice", "hetzner", SECRET)
    with pytest.raises(DecryptionError):
        await cipher.open(owner, kind, sealed)


async def test_tampering_is_detected(cipher: Cipher) -> None:
    sealed = await cipher.seal("u_alice", "hetzner", SECRET)
    for index in (0, len(sealed.ciphertext) // 2, len(sealed.ciphertext) - 1):
        flipped = bytearray(sealed.ciphertext)
        flipped[index] ^= 0x01
        with pytest.raises(DecryptionError):
            await cipher.open("u_alice", "hetzner", Sealed(sealed.nonce, bytes(flipped)))
    other_nonce = bytes([sealed.nonce[0] ^ 1]) + sealed.nonce[1:]
    with pytest.raises(DecryptionError):
        await cipher.open("u_alice", "hetzner", Sealed(other_nonce, sealed.ciphertext))
    with pytest.raises(DecryptionError):
        await cipher.open("u_alice", "hetzner", Sealed(sealed.nonce[:8], sealed.ciphertext))
    with pytest.raises(DecryptionError):
        await cipher.open("u_alice", "hetzner", Sealed(sealed.nonce, sealed.ciphertext[:-1]))


async def test_another_key_does_not_open(cipher: Cipher) -> None:
    sealed = await cipher.seal("u_alice", "hetzner", SECRET)
    with pytest.raises(DecryptionError):
        await Cipher(parse_key(generate_key())).open("u_alice", "hetzner", sealed)


def test_key_setting() -> None:
    key = generate_key()
    assert len(parse_key(key)) == KEY_BYTES
    assert len(parse_key(key.rstrip("="))) == KEY_BYTES  # padding is optional
    assert len(parse_key(f"  {key}\n")) == KEY_BYTES
    # `openssl rand -base64 32` writes standard base64 ('+', '/'): accepted as well.
    assert parse_key(base64.b64encode(b"\xfb" * KEY_BYTES).decode()) == b"\xfb" * KEY_BYTES
    short = base64.urlsafe_b64encode(os.urandom(16)).decode()
    for bad, reason in [
        (None, "is not set"),
        ("", "is not set"),
        ("   ", "is not set"),
        (short, "16 bytes, not 32"),
        (base64.urlsafe_b64encode(os.urandom(64)).decode(), "64 bytes, not 32"),
        ("not base64 at all!", "not valid base64url"),
        ("a" * 42 + "=" + "a", "not valid base64url"),
    ]:
        with pytest.raises(ConfigError, match="SAM_ENCRYPTION_KEY") as caught:
            parse_key(bad)
        assert reason in str(caught.value)


def test_a_deployment_without_a_key_says_which_setting_is_missing() -> None:
    class Env:
        SAM_DOMAIN = "example.com"

    with pytest.raises(ConfigError, match="SAM_ENCRYPTION_KEY is not set"):
        Cipher.from_config(Config.from_env(Env()))


def test_the_key_never_shows_in_a_config_repr() -> None:
    key = generate_key()

    class Env:
        SAM_DOMAIN = "example.com"
        SAM_ENCRYPTION_KEY = key

    config = Config.from_env(Env())
    assert config.encryption_key == key
    assert key not in repr(config)


# --- rows in the real D1 twin -------------------------------------------------------------


@pytest.fixture
def runtime(tmp_path: Path) -> Iterator[local_env.Runtime]:
    built = local_env.build(
        load(ROOT / "wrangler.toml"),
        tmp_path / ".sam",
        ManualClock(),
        {
            "SAM_DOMAIN": "localhost:8787",
            "SAM_ENVIRONMENT": "development",
            "SAM_ENCRYPTION_KEY": generate_key(),
        },
    )
    yield built
    built.close()


async def test_a_ciphertext_moved_to_another_users_row_does_not_open(
    runtime: local_env.Runtime,
) -> None:
    env = runtime.env
    deployment = Deployment.of(env)
    alice = await upsert_local_user(env.DATABASE, "alice")
    bob = await upsert_local_user(env.DATABASE, "bob")
    await save_credential(
        deployment, alice.id, CredentialKind.HETZNER, "", "alice-secret-token-0001"
    )
    await save_credential(deployment, bob.id, CredentialKind.HETZNER, "", "bob-secret-token-000002")
    assert await open_credential(deployment, alice.id, CredentialKind.HETZNER) == (
        "alice-secret-token-0001"
    )
    # Bob (or anyone with write access to D1) copies Alice's sealed token into his row.
    await (
        env.DATABASE.prepare(
            "UPDATE credentials SET nonce = (SELECT nonce FROM credentials WHERE user_id = ?1), "
            "ciphertext = (SELECT ciphertext FROM credentials WHERE user_id = ?1) "
            "WHERE user_id = ?2"
        )
        .bind(alice.id, bob.id)
        .run()
    )
    with pytest.raises(CredentialUnreadable):  # refused by the cipher: the user must re-enter it
        await open_credential(deployment, bob.id, CredentialKind.HETZNER)


async def test_a_ciphertext_relabelled_as_another_kind_does_not_open(
    runtime: local_env.Runtime,
) -> None:
    env = runtime.env
    deployment = Deployment.of(env)
    alice = await upsert_local_user(env.DATABASE, "alice")
    await save_credential(
        deployment, alice.id, CredentialKind.ANTHROPIC, "", "sk-ant-secret-0000001"
    )
    await (
        env.DATABASE.prepare("UPDATE credentials SET kind = 'openai' WHERE user_id = ?")
        .bind(alice.id)
        .run()
    )
    with pytest.raises(CredentialUnreadable):
        await open_credential(deployment, alice.id, CredentialKind.OPENAI)
    with pytest.raises(CredentialMissing):
        await open_credential(deployment, alice.id, CredentialKind.ANTHROPIC)


async def test_open_credential_picks_the_users_own_newest_or_labelled_value(
    runtime: local_env.Runtime,
) -> None:
    env = runtime.env
    deployment = Deployment.of(env)
    alice = await upsert_local_user(env.DATABASE, "alice")
    bob = await upsert_local_user(env.DATABASE, "bob")
    await save_credential(
        deployment, alice.id, CredentialKind.OPENAI, "work", "sk-openai-work-000001"
    )
    await save_credential(
        deployment, alice.id, CredentialKind.OPENAI, "home", "sk-openai-home-000002"
    )
    await save_credential(deployment, bob.id, CredentialKind.OPENAI, "", "sk-openai-bob-0000003")
    assert await open_credential(deployment, alice.id, CredentialKind.OPENAI, "work") == (
        "sk-openai-work-000001"
    )
    assert (
        await open_credential(deployment, bob.id, CredentialKind.OPENAI) == "sk-openai-bob-0000003"
    )
    await env.DATABASE.prepare(
        "UPDATE credentials SET created_at = '2020-01-01T00:00:00.000Z' WHERE label = 'home'"
    ).run()
    assert (
        await open_credential(deployment, alice.id, CredentialKind.OPENAI)
        == "sk-openai-work-000001"
    )
    with pytest.raises(CredentialMissing) as missing:
        await open_credential(deployment, bob.id, CredentialKind.HETZNER)
    assert status_for(missing.value) == 400 and "hetzner" in missing.value.message
