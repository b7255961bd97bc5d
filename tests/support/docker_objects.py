"""Remove what a test's agents left in the shared Docker Engine, by one of its labels."""

import subprocess


def remove_labelled(label: str) -> list[str]:
    """Remove the containers, then the networks (one per workspace), carrying `label`
    (`name=value`, e.g. `sam.node=n1`); the ids of what was there."""
    found: list[str] = []
    for listing, removal in (
        (["ps", "--all"], ["rm", "--force", "--volumes"]),
        (["network", "ls"], ["network", "rm"]),
    ):
        ids = subprocess.run(
            ["docker", *listing, "--quiet", "--filter", f"label={label}"],
            capture_output=True,
            text=True,
        ).stdout.split()
        if ids:
            subprocess.run(["docker", *removal, *ids], capture_output=True)
        found += ids
    return found
