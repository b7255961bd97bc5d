"""What a test's agents made in the shared Docker Engine, found and removed by one of its
labels (`name=value`, e.g. `sam.node=n1`): never anything of another test's."""

import subprocess

LISTINGS = {"containers": ["ps", "--all"], "networks": ["network", "ls"]}
REMOVALS = {"containers": ["rm", "--force", "--volumes"], "networks": ["network", "rm"]}


def labelled(kind: str, label: str) -> list[str]:
    """The ids of the `kind` ("containers" or "networks") carrying `label`."""
    return subprocess.run(
        ["docker", *LISTINGS[kind], "--quiet", "--filter", f"label={label}"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()


def remove_labelled(label: str) -> list[str]:
    """Remove the containers, then the networks (one per workspace), carrying `label`;
    the ids of what was there."""
    found: list[str] = []
    for kind in ("containers", "networks"):
        ids = labelled(kind, label)
        if ids:
            subprocess.run(["docker", *REMOVALS[kind], *ids], capture_output=True)
        found += ids
    return found
