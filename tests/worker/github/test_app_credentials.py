"""The App's JWT and installation tokens, against the loopback GitHub, which verifies the
JWT with the App's public key and records what each token may do.

Covers: a JWT GitHub accepts (claims, RS256 with the PKCS #1 key GitHub hands out, or
PKCS #8), one it refuses (another key, a clock far off), installation tokens cached per
restriction and refreshed near expiry (one clock for the deployment and the double), the
restriction sent to GitHub, too much asked for, an installation that is gone, and the
App's settings refused with the name of the bad one and never the key.
"""

from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from tests.fakes.github import FakeGitHub
from tests.worker.github.conftest import DOMAIN, make_deployment
from twin.clock import ManualClock
from twin.env import Env
from worker.config import Config, ConfigError
from worker.deployment import Deployment
from worker.errors import InvalidInput
from worker.github import rest, tokens
from worker.github.app_jwt import (
    APP_JWT_BACKDATE_SECONDS,
    APP_JWT_LIFETIME_SECONDS,
    APP_JWT_REUSE_SECONDS,
    GitHubAppNotConfigured,
    app_jwt,
)
from worker.github.private_key import pkcs8_der


def installation_of(github: FakeGitHub, account: str) -> int:
    [found] = [each.id for each in github.installations.values() if each.account == account]
    return found


def pkcs8_pem(key: rsa.RSAPrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


async def test_the_app_jwt_is_accepted_by_github(
    github: FakeGitHub, deployment: Deployment, clock: ManualClock
) -> None:
    clock.advance(APP_JWT_REUSE_SECONDS)  # past any JWT an earlier test left in the isolate
    token = await app_jwt(deployment)

    assert jwt.get_unverified_header(token) == {"alg": "RS256", "typ": "JWT"}
    times_checked_below = {"verify_iat": False, "verify_exp": False}
    claims = jwt.decode(
        token, github.app_key.public_key(), algorithms=["RS256"], options=times_checked_below
    )
    now = int(clock.now())
    assert claims == {
        "iss": str(github.app_id),
        "iat": now - APP_JWT_BACKDATE_SECONDS,
        "exp": now + APP_JWT_LIFETIME_SECONDS,
    }
    app = await rest.api(deployment.config, "GET", "/app", token=token)
    assert app["slug"] == github.app_slug

    # Reused while it has long to live, then signed afresh; each one GitHub accepts.
    clock.advance(APP_JWT_REUSE_SECONDS - 1)
    assert await app_jwt(deployment) == token
    clock.advance(1)
    fresh = await app_jwt(deployment)
    assert fresh != token
    assert (await rest.api(deployment.config, "GET", "/app", token=fresh))["id"] == github.app_id


async def test_a_pkcs8_key_signs_the_same_app(
    github: FakeGitHub, clock: ManualClock, tmp_path: Path
) -> None:
    made = make_deployment(
        github, clock, tmp_path, SAM_GITHUB_APP_PRIVATE_KEY=pkcs8_pem(github.app_key)
    )
    app = await rest.api(made.config, "GET", "/app", token=await app_jwt(made))
    assert app["id"] == github.app_id


async def test_github_refuses_another_key_and_a_clock_far_off(
    github: FakeGitHub, clock: ManualClock, tmp_path: Path
) -> None:
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    forged = make_deployment(
        github, clock, tmp_path / "forged", SAM_GITHUB_APP_PRIVATE_KEY=pkcs8_pem(stranger)
    )
    with pytest.raises(rest.GitHubRefused, match="could not be decoded"):
        await rest.api(forged.config, "GET", "/app", token=await app_jwt(forged))

    # The deployment's clock 20 minutes ahead of GitHub's: the JWT is not valid yet there.
    ahead = ManualClock(clock.now() + 20 * 60)
    early = Deployment(forged.env, Config.from_env(Env(vars(_app_env(github)))), ahead)
    with pytest.raises(rest.GitHubRefused, match="Issued at"):
        await rest.api(early.config, "GET", "/app", token=await app_jwt(early))


def _app_env(github: FakeGitHub) -> Env:
    return Env({"SAM_DOMAIN": DOMAIN, **github.app_vars()})


async def test_tokens_are_cached_per_restriction_and_refreshed_near_expiry(
    github: FakeGitHub, deployment: Deployment, clock: ManualClock
) -> None:
    installation = installation_of(github, "alice")
    minted_before = len(github.token_requests)
    read_api = {"repositories": ("api",), "permissions": {"contents": "read"}}

    first = await tokens.installation_token(deployment, installation, **read_api)
    again = await tokens.installation_token(deployment, installation, **read_api)
    write = await tokens.installation_token(
        deployment, installation, repositories=("api",), permissions={"contents": "write"}
    )

    assert again.token == first.token
    assert write.token != first.token
    assert len(github.token_requests) == minted_before + 2
    assert github.token_requests[-2] == {
        "installation_id": installation,
        "repositories": ["api"],
        "permissions": {"contents": "read"},
    }
    assert github.tokens[first.token].repositories == ("alice/api",)
    assert github.tokens[first.token].permissions == {"contents": "read"}
    assert first.expires_at == pytest.approx(clock.now() + 3600, abs=1)

    # Still handed out until the margin before its expiry, then replaced.
    clock.advance(first.expires_at - clock.now() - tokens.TOKEN_REFRESH_MARGIN_SECONDS - 1)
    assert (await tokens.installation_token(deployment, installation, **read_api)).token == (
        first.token
    )
    clock.advance(2)
    fresh = await tokens.installation_token(deployment, installation, **read_api)
    assert fresh.token != first.token
    assert fresh.expires_at - clock.now() > tokens.TOKEN_REFRESH_MARGIN_SECONDS
    assert "token" not in repr(fresh).replace("InstallationToken", "")


async def test_asking_for_more_than_the_installation_has_is_refused(
    github: FakeGitHub, deployment: Deployment
) -> None:
    installation = installation_of(github, "alice")
    with pytest.raises(InvalidInput, match="not accessible to the parent installation"):
        await tokens.installation_token(deployment, installation, repositories=("tools",))
    with pytest.raises(InvalidInput, match="not granted"):
        await tokens.installation_token(
            deployment, installation, repositories=("api",), permissions={"administration": "write"}
        )


async def test_an_installation_that_is_gone_says_so(deployment: Deployment) -> None:
    with pytest.raises(tokens.InstallationGone, match="Install it again"):
        await tokens.installation_token(deployment, 987654321)


async def test_without_the_app_configured_the_error_names_the_settings(tmp_path: Path) -> None:
    unconfigured = Deployment.of(Env({"SAM_DOMAIN": DOMAIN}))
    with pytest.raises(GitHubAppNotConfigured, match="SAM_GITHUB_APP_PRIVATE_KEY"):
        await app_jwt(unconfigured)


def test_the_pkcs1_key_github_hands_out_becomes_pkcs8(github: FakeGitHub) -> None:
    expected = github.app_key.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    pkcs1 = github.app_vars()["SAM_GITHUB_APP_PRIVATE_KEY"]
    assert pkcs1.startswith("-----BEGIN RSA PRIVATE KEY-----")
    assert pkcs8_der(pkcs1) == expected
    assert pkcs8_der(pkcs1.replace("\n", "\\n")) == expected  # pasted on one line
    assert pkcs8_der(pkcs8_pem(github.app_key)) == expected


def ec_pem() -> str:
    key = ec.generate_private_key(ec.SECP256R1())
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    ).decode()


@pytest.mark.parametrize(
    ("override", "named"),
    [
        ({"SAM_GITHUB_APP_SLUG": ""}, "SAM_GITHUB_APP_SLUG is not set"),
        ({"SAM_GITHUB_APP_ID": "sam-app"}, "SAM_GITHUB_APP_ID is the App's numeric ID"),
        ({"SAM_GITHUB_APP_SLUG": "Not A Slug"}, "SAM_GITHUB_APP_SLUG is the App's URL name"),
        ({"SAM_GITHUB_APP_PRIVATE_KEY": "MIIEsecretish"}, "not a PEM private key"),
        ({"SAM_GITHUB_APP_PRIVATE_KEY": "EC"}, "not the RSA private key"),
        (
            {
                "SAM_GITHUB_APP_PRIVATE_KEY": "-----BEGIN RSA PRIVATE KEY-----\n!!secret!!\n"
                "-----END RSA PRIVATE KEY-----"
            },
            "not valid base64",
        ),
    ],
)
def test_bad_app_settings_name_the_setting_and_never_show_the_key(
    github: FakeGitHub, override: dict[str, str], named: str
) -> None:
    if override.get("SAM_GITHUB_APP_PRIVATE_KEY") == "EC":
        override = {"SAM_GITHUB_APP_PRIVATE_KEY": ec_pem()}
    with pytest.raises(ConfigError, match=named) as refused:
        Config.from_env(Env({"SAM_DOMAIN": DOMAIN, **github.app_vars(), **override}))
    key = override.get("SAM_GITHUB_APP_PRIVATE_KEY", "")
    for line in key.splitlines():
        if "-----" not in line and line:
            assert line not in str(refused.value)


def test_the_config_never_shows_the_key(github: FakeGitHub) -> None:
    config = Config.from_env(_app_env(github))
    assert config.github_app is not None
    assert config.github_app.app_id == str(github.app_id)
    body = github.app_vars()["SAM_GITHUB_APP_PRIVATE_KEY"].splitlines()[1]
    assert body not in repr(config)
    assert "private_key" not in repr(config.github_app)
