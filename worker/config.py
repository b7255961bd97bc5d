"""The deployment's settings, read once per request from the worker's `env` vars.

Vars come from `[vars]` in wrangler.toml (overridden locally by `sam dev`); a bad value
fails loudly with the name of the var, never silently falls back.
"""

from dataclasses import dataclass
from typing import Any

DEFAULT_MAX_BODY_BYTES = 1024 * 1024
ENVIRONMENTS = ("development", "production")


class ConfigError(ValueError):
    pass


@dataclass(frozen=True)
class Config:
    domain: str
    environment: str
    max_body_bytes: int

    @property
    def is_development(self) -> bool:
        return self.environment == "development"

    @classmethod
    def from_env(cls, env: Any) -> "Config":
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
        return cls(domain, environment, max_body_bytes)


def _var(env: Any, name: str, default: Any) -> Any:
    value = getattr(env, name, None)
    return default if value is None else value
