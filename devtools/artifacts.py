"""`sam upload-agent`: put the node agent's artifact into the local R2 bucket.

A new node downloads the agent from GET /api/agent/download, which serves R2's
`agent/sam-agent-<version>.tar.gz` (worker/api/routes/agent_artifact.py). Under `sam dev` R2 is
the twin's SQLite file in the data directory, so this writes through the same twin; it may
run while `sam dev` does. In production the same object goes to the real bucket with
`wrangler r2 object put` (README).

    sam upload-agent [--data-dir .sam] [--config wrangler.toml] dist/sam-agent-0.1.0.tar.gz
"""

import argparse
import asyncio
import hashlib
import re
import sys
import tarfile
from dataclasses import dataclass
from pathlib import Path

from twin.r2 import R2Bucket
from twin.wrangler import load
from wire.version import VERSION
from worker.api.routes.agent_artifact import ARTIFACT_CONTENT_TYPE, artifact_key

R2_BINDING = "R2"
VERSION_FILE = re.compile(r"sam-agent-(?P<version>[A-Za-z0-9.+-]+)/VERSION")


class ArtifactError(ValueError):
    pass


@dataclass(frozen=True)
class Uploaded:
    key: str
    version: str
    size: int
    sha256: str
    bucket: str


def artifact_version(path: Path) -> str:
    """The version inside the tarball (its `sam-agent-<v>/VERSION`), checked for agreement."""
    try:
        with tarfile.open(path, "r:gz") as tar:
            for member in tar:
                match = VERSION_FILE.fullmatch(member.name)
                if match and member.isfile():
                    inside = tar.extractfile(member)
                    assert inside is not None
                    version = inside.read().decode().strip()
                    if version != match["version"]:
                        raise ArtifactError(f"{path}: VERSION says {version}, folder {match[0]}")
                    return version
    except (OSError, tarfile.TarError) as exc:
        raise ArtifactError(f"{path} is not a readable .tar.gz ({exc})") from None
    raise ArtifactError(
        f"{path} holds no sam-agent-<version>/VERSION: build it with scripts/build-agent"
    )


async def upload(data_dir: Path, config_path: Path, artifact: Path) -> Uploaded:
    version = artifact_version(artifact)
    data = artifact.read_bytes()
    config = load(config_path)
    bucket = next((b for b in config.r2_buckets if b.binding == R2_BINDING), None)
    if bucket is None:
        raise ArtifactError(f"{config_path} binds no R2 bucket as {R2_BINDING}")
    digest = hashlib.sha256(data).hexdigest()
    twin = R2Bucket(data_dir / "r2" / f"{bucket.bucket_name}.sqlite")
    try:
        await twin.put(
            artifact_key(version),
            data,
            httpMetadata={"contentType": ARTIFACT_CONTENT_TYPE},
            customMetadata={"sha256": digest, "version": version},
        )
    finally:
        twin.close()
    return Uploaded(artifact_key(version), version, len(data), digest, bucket.bucket_name)


def add_parser(commands: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    command = commands.add_parser(
        "upload-agent", help="put the node agent artifact into the local R2 bucket"
    )
    command.add_argument("path", type=Path, help="dist/sam-agent-<version>.tar.gz")
    command.add_argument("--data-dir", type=Path, default=Path(".sam"), help="(%(default)s)")
    command.add_argument("--config", type=Path, default=Path("wrangler.toml"), help="(%(default)s)")


def upload_command(args: argparse.Namespace) -> int:
    try:
        done = asyncio.run(upload(args.data_dir.resolve(), args.config, args.path))
    except (ArtifactError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(
        f"uploaded {done.key} ({done.size / 1e6:.1f} MB, sha256 {done.sha256[:12]}…) to the "
        f"local R2 bucket {done.bucket} in {args.data_dir}"
    )
    if done.version != VERSION:
        print(
            f"warning: this control plane is {VERSION} and serves agent/sam-agent-{VERSION}"
            f".tar.gz; nodes will not get the {done.version} you uploaded"
        )
    return 0
