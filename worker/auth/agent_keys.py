"""Agent keys (the model APIs' keys a user stores for coding agents), checked before saving.

    anthropic  an API key (`sk-ant-api…`, sent as `x-api-key`) or a Claude Code OAuth token
               (`sk-ant-oat…`, from `claude setup-token`; sent as `Authorization: Bearer` with
               the OAuth beta header); with a base URL of the user's own gateway, any key
               shape is taken as an API key
    openai     an API key, sent as `Authorization: Bearer`

A key is saved only after its upstream answered `GET {base}/v1/models` with it (both APIs
serve that list to any valid key): 401/403 is a refusal the user can act on, anything else
a 502 that says to try again. Keys never appear in an answer or a log line.
"""

import ipaddress
import logging
from typing import Literal
from urllib.parse import urlsplit

from wire.callbacks import AGENT_CREDENTIAL_MISSING, AgentCredential
from worker.auth.credential_check import CredentialCheck, check_credential
from worker.auth.credentials import (
    CredentialKind,
    CredentialMissing,
    open_credential_with_base,
)
from worker.config import Config
from worker.deployment import Deployment
from worker.errors import Conflict, InvalidInput

log = logging.getLogger("sam.agent_keys")

CHECK_PATH = "/v1/models"
ANTHROPIC_VERSION = "2023-06-01"
OAUTH_BETA = "oauth-2025-04-20"
ANTHROPIC_API_KEY_PREFIX = "sk-ant-api"
ANTHROPIC_OAUTH_PREFIX = "sk-ant-oat"
MAX_BASE_URL_CHARS = 512
LOOPBACK_NAMES = frozenset({"localhost"})
ANTHROPIC_KEY_HELP = (
    "Paste an Anthropic API key (sk-ant-api…, from console.anthropic.com → API keys) or a "
    "Claude Code OAuth token (sk-ant-oat…, from `claude setup-token`)."
)
OPENAI_KEY_HELP = "Paste an OpenAI API key (platform.openai.com → API keys)."
UPSTREAM_NAMES = {CredentialKind.ANTHROPIC: "the Anthropic API", CredentialKind.OPENAI: "OpenAI"}


class AgentCredentialMissing(Conflict):
    def __init__(self) -> None:
        super().__init__(
            AGENT_CREDENTIAL_MISSING,
            "The workspace's owner has no Anthropic key: add your Anthropic key in Settings → "
            "Agent, then start the agent session again.",
        )


async def open_agent_credential(deployment: Deployment, user_id: str) -> AgentCredential:
    """The user's Anthropic credential as the agent's model proxy injects it. Raises
    AgentCredentialMissing when there is none (CredentialUnreadable when it no longer
    opens)."""
    try:
        opened = await open_credential_with_base(deployment, user_id, CredentialKind.ANTHROPIC)
    except CredentialMissing:
        raise AgentCredentialMissing() from None
    kind = anthropic_key_kind(opened.secret)
    return AgentCredential(kind=kind, secret=opened.secret, base_url=opened.base_url)


def anthropic_key_kind(secret: str) -> Literal["api_key", "oauth_token"]:
    """How the key is presented upstream: "oauth_token" or "api_key" (wire.AgentCredential)."""
    return "oauth_token" if secret.startswith(ANTHROPIC_OAUTH_PREFIX) else "api_key"


def auth_headers(kind: CredentialKind, secret: str) -> dict[str, str]:
    if kind is CredentialKind.OPENAI:
        return {"Authorization": f"Bearer {secret}"}
    if anthropic_key_kind(secret) == "oauth_token":
        return {
            "Authorization": f"Bearer {secret}",
            "anthropic-beta": OAUTH_BETA,
            "anthropic-version": ANTHROPIC_VERSION,
        }
    return {"x-api-key": secret, "anthropic-version": ANTHROPIC_VERSION}


def checked_base_url(config: Config, raw: str | None) -> str | None:
    """The user's upstream base URL without a trailing slash, or None for the default.
    https only; http only to this machine, and only in development."""
    if raw is None or not raw.strip():
        return None
    url = raw.strip().rstrip("/")
    problem = _base_url_problem(config, url)
    if problem:
        raise InvalidInput("invalid_base_url", f"base_url {problem}.")
    return url


def _base_url_problem(config: Config, url: str) -> str | None:
    if len(url) > MAX_BASE_URL_CHARS:
        return f"is over {MAX_BASE_URL_CHARS} characters"
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return "is not a URL: use https://host[:port][/path]"
    del port  # parsed only to refuse a bad one
    if parts.scheme not in ("https", "http") or not parts.hostname:
        return "must be an https:// URL, for example https://gateway.example.com/anthropic"
    if parts.username or parts.password or parts.query or parts.fragment:
        return "must not carry a user, a query or a fragment: put the key in the key field"
    if parts.scheme == "http" and not (config.is_development and _loopback(parts.hostname)):
        return "must use https (plain http only to this machine, in development)"
    return None


def _loopback(host: str) -> bool:
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_shape(kind: CredentialKind, secret: str, base_url: str | None) -> None:
    """Refuse an Anthropic key that is neither shape (unless a gateway of the user's own
    issues it: then any shape goes)."""
    if kind is not CredentialKind.ANTHROPIC or base_url is not None:
        return
    if not secret.startswith((ANTHROPIC_API_KEY_PREFIX, ANTHROPIC_OAUTH_PREFIX)):
        raise InvalidInput(
            "invalid_credential",
            "This does not look like an Anthropic key, so it was not saved. " + ANTHROPIC_KEY_HELP,
        )


def default_base_url(config: Config, kind: CredentialKind) -> str:
    return config.openai_api_url if kind is CredentialKind.OPENAI else config.anthropic_api_url


async def check_agent_key(
    config: Config, kind: CredentialKind, secret: str, base_url: str | None
) -> None:
    """Raise a domain error unless the upstream accepts `secret` (a read-only call)."""
    check_shape(kind, secret, base_url)
    base = base_url or default_base_url(config, kind)
    upstream = f"{UPSTREAM_NAMES[kind]} at {base}"
    help_text = OPENAI_KEY_HELP if kind is CredentialKind.OPENAI else ANTHROPIC_KEY_HELP
    await check_credential(
        CredentialCheck(
            url=base + CHECK_PATH,
            headers=auth_headers(kind, secret),
            error_prefix="model_api",
            unreachable=f"Could not reach {upstream} to check the key, so it was not saved. "
            "Check the base URL, or try again in a minute.",
            rejected=lambda status: (
                f"{upstream} rejected this key ({status}), so it was not saved. {help_text}"
            ),
            unavailable=lambda status: (
                f"{upstream} answered {status} to GET {CHECK_PATH} while checking the key, so "
                "it was not saved. Check the base URL, or try again in a minute."
            ),
        )
    )
