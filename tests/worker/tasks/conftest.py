"""The worker tests' loopback Hetzner and Cloudflare DNS, for the tasks' tests."""

from tests.worker.conftest import cloud, cloudflare, hetzner

__all__ = ["cloud", "cloudflare", "hetzner"]
