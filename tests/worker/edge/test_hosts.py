import pytest

from worker.edge.hosts import Destination, Surface, resolve

DOMAIN = "localhost:8787"


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("app.localhost:8787", Destination(Surface.APP)),
        ("APP.LocalHost:8787", Destination(Surface.APP)),
        ("api.localhost:8787", Destination(Surface.API)),
        ("api.localhost:8787.", Destination(Surface.API)),
        ("ws-01hzy3k7.localhost:8787", Destination(Surface.WORKSPACE, "01hzy3k7")),
        ("ws-a-b-c.localhost:8787", Destination(Surface.WORKSPACE, "a-b-c")),
    ],
)
def test_known_hosts(host: str, expected: Destination) -> None:
    assert resolve(host, DOMAIN) == expected


@pytest.mark.parametrize(
    "host",
    [
        "localhost:8787",  # the bare domain serves nothing
        "app.localhost:9999",  # another port is another deployment
        "evil.com",
        "app.localhost:8787.evil.com",
        "x.app.localhost:8787",
        "ws-.localhost:8787",
        "ws-UPPER_case!.localhost:8787",
        "ws-" + "a" * 64 + ".localhost:8787",
        "ws-a.b.localhost:8787",
        "",
    ],
)
def test_unknown_hosts(host: str) -> None:
    assert resolve(host, DOMAIN).surface is Surface.UNKNOWN


def test_production_domain() -> None:
    assert resolve("ws-abc.sam.example.com", "sam.example.com") == Destination(
        Surface.WORKSPACE, "abc"
    )
    assert resolve("api.example.com", "sam.example.com").surface is Surface.UNKNOWN
