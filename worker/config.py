"""The deployment's settings, parsed from the worker's `env` vars by `Deployment.of`.

Vars come from `[vars]` in wrangler.toml (overridden locally by `sam dev`); a bad value
fails loudly with the name of the var, never silently falls back.
"""

import re
from dataclasses import dataclass, field
from typing import Any

from worker.github.private_key import pkcs8_der

DEFAULT_MAX_BODY_BYTES = 1024 * 1024
ENVIRONMENTS = ("development", "production")
DEFAULT_HETZNER_API_URL = "https://api.hetzner.cloud"
DEFAULT_GITHUB_BASE_URL = "https://github.com"
DEFAULT_GITHUB_API_URL = "https://api.github.com"
# GitHub's rule for user and organisation logins.
GITHUB_NAME_PATTERN = r"[A-Za-z0-9](?:-?[A-Za-z0-9])*"
GITHUB_NAME_MAX_CHARS = 39
DEFAULT_CLOUDFLARE_API_URL = "https://api.cloudflare.com/client/v4"
DEFAULT_ANTHROPIC_API_URL = "https://api.anthropic.com"
DEFAULT_OPENAI_API_URL = "https://api.openai.com"
# Nodes (worker/nodes/service.py, durable_objects/node_lifecycle.py).
DEFAULT_MAX_WORKSPACES_PER_NODE = 4
DEFAULT_WARM_TIMEOUT_SECONDS = 30 * 60
DEFAULT_NODE_HEARTBEAT_SECONDS = 30.0  # the agent's SAM_HEARTBEAT_SECONDS default
DEFAULT_NODE_PROVISIONING_TIMEOUT_SECONDS = 30 * 60
# A running workspace without terminal input, agent activity or a viewer for this long is
# stopped by cron (worker/workspaces/idle.py).
DEFAULT_IDLE_TIMEOUT_SECONDS = 30 * 60
# Where users other than the operator may name local repositories (worker/workspaces/
# local_paths.py): absolute directories separated by ":", "{login}" for the user's login.
LOCAL_ROOTS_VAR = "SAM_LOCAL_REPOSITORY_ROOTS"
LOGIN_PLACEHOLDER = "{login}"
# The GitHub App (docs/github-app.md): all three settings, or none.
GITHUB_APP_VARS = ("SAM_GITHUB_APP_ID", "SAM_GITHUB_APP_SLUG", "SAM_GITHUB_APP_PRIVATE_KEY")
GITHUB_APP_SLUG_PATTERN = r"[a-z0-9](?:[a-z0-9-]*[a-z0-9])?"


class ConfigError(ValueError):
    pass


@dataclass(frozen=True)
class GitHubAppConfig:
    app_id: str  # GitHub's numeric App ID: the app JWT's `iss`
    slug: str  # the App's URL name: github.com/apps/{slug}
    # PKCS #8 DER, whatever PEM form the setting held; a secret, so out of repr.
    private_key: bytes = field(repr=False)


@dataclass(frozen=True)
class Config:
    domain: str
    environment: str
    max_body_bytes: int
    # Parsed (and refused when missing) by worker/auth/crypto.py only when a secret is touched;
    # kept out of repr so a logged Config never shows it.
    encryption_key: str = field(default="", repr=False)
    hetzner_api_url: str = DEFAULT_HETZNER_API_URL
    # The GitHub OAuth app for sign-in (None until the operator sets it); the base URLs
    # are settings so that tests can point them at a loopback fake.
    github_client_id: str | None = None
    github_client_secret: str | None = field(default=None, repr=False)
    github_base_url: str = DEFAULT_GITHUB_BASE_URL
    github_api_url: str = DEFAULT_GITHUB_API_URL
    # The Cloudflare DNS API for cloud nodes' `vm-{id}` A records (worker/nodes/dns.py); without
    # a token and zone, Hetzner nodes are refused before any VM is made.
    cloudflare_api_url: str = DEFAULT_CLOUDFLARE_API_URL
    cloudflare_api_token: str | None = field(default=None, repr=False)
    cloudflare_zone_id: str | None = None
    # Who may sign in with GitHub: logins and/or organisations (lower-cased). With neither,
    # GitHub sign-in is refused: a deployment must name its users (worker/auth/allowlist.py).
    allowed_github_users: frozenset[str] = frozenset()
    allowed_github_orgs: frozenset[str] = frozenset()
    # Where agent keys are checked when saved (worker/auth/agent_keys.py) and no base URL of
    # the user's own is given; settings so that tests can point them at a loopback fake.
    anthropic_api_url: str = DEFAULT_ANTHROPIC_API_URL
    openai_api_url: str = DEFAULT_OPENAI_API_URL
    # Nodes: workspaces per node, how long an idle node stays warm, the heartbeat interval
    # agents use (health is judged in multiples of it), and when provisioning gives up.
    max_workspaces_per_node: int = DEFAULT_MAX_WORKSPACES_PER_NODE
    warm_timeout_seconds: float = DEFAULT_WARM_TIMEOUT_SECONDS
    node_heartbeat_seconds: float = DEFAULT_NODE_HEARTBEAT_SECONDS
    node_provisioning_timeout_seconds: float = DEFAULT_NODE_PROVISIONING_TIMEOUT_SECONDS
    # Workspaces unused this long are stopped (their work saved or kept first).
    idle_timeout_seconds: float = DEFAULT_IDLE_TIMEOUT_SECONDS
    # Local-path repositories: the roots any user may name (the operator may name any path).
    local_repository_roots: tuple[str, ...] = ()
    # The GitHub App that reaches users' repositories (None until the operator sets it).
    github_app: GitHubAppConfig | None = None

    @property
    def is_development(self) -> bool:
        return self.environment == "development"

    @classmethod
    def from_env(cls, env: Any) -> "Config":
        """The settings of `env`; call it once per request, Durable Object or cron run
        (worker/deployment.py) and pass the result along."""
        domain = str(_var(env, "SAM_DOMAIN", "")).strip().lower()
        if not domain:
            raise ConfigError("SAM_DOMAIN is not set: the hostname the deployment answers on")
        environment = str(_var(env, "SAM_ENVIRONMENT", "production"))
        if environment not in ENVIRONMENTS:
            raise ConfigError(f"SAM_ENVIRONMENT must be one of {ENVIRONMENTS}, not {environment!r}")
        raw_limit = _var(env, "SAM_MAX_BODY_BYTES", DEFAULT_MAX_BODY_BYTES)
        try:
            max_body_bytes = int(raw_limit)
        except (TypeError, ValueError):
            raise ConfigError(
                f"SAM_MAX_BODY_BYTES must be a number of bytes, not {raw_limit!r}"
            ) from None
        if max_body_bytes <= 0:
            raise ConfigError("SAM_MAX_BODY_BYTES must be positive")
        return cls(
            domain,
            environment,
            max_body_bytes,
            encryption_key=str(_var(env, "SAM_ENCRYPTION_KEY", "")),
            hetzner_api_url=_base_url(env, "SAM_HETZNER_API_URL", DEFAULT_HETZNER_API_URL),
            github_client_id=str(_var(env, "SAM_GITHUB_CLIENT_ID", "")).strip() or None,
            github_client_secret=str(_var(env, "SAM_GITHUB_CLIENT_SECRET", "")).strip() or None,
            github_base_url=_base_url(env, "SAM_GITHUB_BASE_URL", DEFAULT_GITHUB_BASE_URL),
            github_api_url=_base_url(env, "SAM_GITHUB_API_URL", DEFAULT_GITHUB_API_URL),
            cloudflare_api_url=_base_url(env, "SAM_CLOUDFLARE_API_URL", DEFAULT_CLOUDFLARE_API_URL),
            cloudflare_api_token=str(_var(env, "SAM_CLOUDFLARE_API_TOKEN", "")).strip() or None,
            cloudflare_zone_id=str(_var(env, "SAM_CLOUDFLARE_ZONE_ID", "")).strip() or None,
            allowed_github_users=_github_names(env, "SAM_ALLOWED_GITHUB_USERS"),
            allowed_github_orgs=_github_names(env, "SAM_ALLOWED_GITHUB_ORGS"),
            anthropic_api_url=_base_url(env, "SAM_ANTHROPIC_API_URL", DEFAULT_ANTHROPIC_API_URL),
            openai_api_url=_base_url(env, "SAM_OPENAI_API_URL", DEFAULT_OPENAI_API_URL),
            max_workspaces_per_node=int(
                _positive(env, "SAM_MAX_WORKSPACES_PER_NODE", DEFAULT_MAX_WORKSPACES_PER_NODE, int)
            ),
            warm_timeout_seconds=_positive(
                env, "SAM_WARM_TIMEOUT_SECONDS", DEFAULT_WARM_TIMEOUT_SECONDS, float
            ),
            node_heartbeat_seconds=_positive(
                env, "SAM_NODE_HEARTBEAT_SECONDS", DEFAULT_NODE_HEARTBEAT_SECONDS, float
            ),
            node_provisioning_timeout_seconds=_positive(
                env,
                "SAM_NODE_PROVISIONING_TIMEOUT_SECONDS",
                DEFAULT_NODE_PROVISIONING_TIMEOUT_SECONDS,
                float,
            ),
            idle_timeout_seconds=_positive(
                env, "SAM_IDLE_TIMEOUT_SECONDS", DEFAULT_IDLE_TIMEOUT_SECONDS, float
            ),
            local_repository_roots=_local_roots(str(_var(env, LOCAL_ROOTS_VAR, ""))),
            github_app=_github_app(env),
        )


def _var(env: Any, name: str, default: Any) -> Any:
    value = getattr(env, name, None)
    return default if value is None else value


def _positive(env: Any, name: str, default: float, kind: type[int] | type[float]) -> float:
    raw = _var(env, name, default)
    try:
        value = kind(raw)
    except (TypeError, ValueError):
        raise ConfigError(f"{name} must be a positive {kind.__name__}, not {raw!r}") from None
    if not value > 0:  # also refuses NaN
        raise ConfigError(f"{name} must be positive, not {raw!r}")
    return value


def _github_app(env: Any) -> GitHubAppConfig | None:
    values = [str(_var(env, name, "")).strip() for name in GITHUB_APP_VARS]
    if not any(values):
        return None
    missing = [name for name, value in zip(GITHUB_APP_VARS, values, strict=True) if not value]
    if missing:
        raise ConfigError(
            f"The GitHub App needs {', '.join(GITHUB_APP_VARS)}; {', '.join(missing)} "
            "is not set (docs/github-app.md)"
        )
    app_id, slug, pem = values
    if not app_id.isdigit():
        raise ConfigError(f"SAM_GITHUB_APP_ID is the App's numeric ID, not {app_id!r}")
    if not re.fullmatch(GITHUB_APP_SLUG_PATTERN, slug):
        raise ConfigError(
            f"SAM_GITHUB_APP_SLUG is the App's URL name (github.com/apps/<slug>), not {slug!r}"
        )
    try:
        private_key = pkcs8_der(pem)
    except ValueError as exc:
        # Never the value itself: it is the App's private key.
        raise ConfigError(
            f"SAM_GITHUB_APP_PRIVATE_KEY: {exc}; set it to the .pem file GitHub generated "
            "(`wrangler secret put SAM_GITHUB_APP_PRIVATE_KEY < app.private-key.pem`)"
        ) from None
    return GitHubAppConfig(app_id, slug, private_key)


def _local_roots(raw: str) -> tuple[str, ...]:
    roots = tuple(part.strip().rstrip("/") or "/" for part in raw.split(":") if part.strip())
    for root in roots:
        segments = root.split("/")
        if not root.startswith("/") or ".." in segments or "." in segments:
            raise ConfigError(f"{LOCAL_ROOTS_VAR}: {root!r} must be an absolute path, without ..")
        if "{" in root.replace(LOGIN_PLACEHOLDER, "") or "}" in root.replace(LOGIN_PLACEHOLDER, ""):
            raise ConfigError(f"{LOCAL_ROOTS_VAR}: {root!r} may hold only {LOGIN_PLACEHOLDER}")
    return roots


def _github_names(env: Any, name: str) -> frozenset[str]:
    """A comma- or space-separated list of GitHub logins (users or organisations)."""
    names = str(_var(env, name, "")).replace(",", " ").split()
    bad = [
        each
        for each in names
        if len(each) > GITHUB_NAME_MAX_CHARS or not re.fullmatch(GITHUB_NAME_PATTERN, each)
    ]
    if bad:
        raise ConfigError(
            f"{name} lists GitHub logins separated by commas; {bad[0]!r} is not one "
            "(letters, digits and single hyphens, at most 39 characters)"
        )
    return frozenset(each.lower() for each in names)


def _base_url(env: Any, name: str, default: str) -> str:
    url = str(_var(env, name, default)).strip().rstrip("/")
    if not url.startswith(("https://", "http://")):
        raise ConfigError(f"{name} must be an http(s) URL, not {url!r}")
    return url
