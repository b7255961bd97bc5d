"""Which local repositories a user may clone (the launcher's half of
worker/workspaces/local_paths.py).

    confined_repository(path, roots) -> the resolved path, or None (refused)

`roots` None: anywhere on this machine (the operator). Otherwise every directory git would
read from must resolve inside one of `roots`: the repository itself (symbolic links
resolved first), its git directory (a `.git` file may point elsewhere), the common
directory of a linked worktree and the object stores listed in `objects/info/alternates`.
Any failure to look (missing, unreadable, not a repository) is the same None: the caller
gives one refusal for all, so nobody learns which paths exist.
"""

from pathlib import Path

GITDIR_PREFIX = "gitdir:"


def confined_repository(path: str, roots: list[str] | None) -> str | None:
    try:
        repository = Path(path).resolve(strict=True)
        git_dir = _git_dir(repository)
        if git_dir is None:
            return None
        reached = [repository, git_dir, *_shared_directories(git_dir)]
    except (OSError, RuntimeError, UnicodeDecodeError):  # RuntimeError: a symlink loop
        return None
    if roots is not None:
        allowed = [Path(root).resolve() for root in roots]
        if not all(any(place.is_relative_to(root) for root in allowed) for place in reached):
            return None
    return str(repository)


def _git_dir(repository: Path) -> Path | None:
    """The repository's git directory: `.git` (a directory, or a file naming one) or,
    for a bare repository, the repository itself."""
    dot_git = repository / ".git"
    if dot_git.is_dir():
        return dot_git.resolve(strict=True)
    if dot_git.is_file():
        text = dot_git.read_text().strip()
        if not text.startswith(GITDIR_PREFIX):
            return None
        target = (repository / text.removeprefix(GITDIR_PREFIX).strip()).resolve(strict=True)
        return target if target.is_dir() else None
    if (repository / "HEAD").is_file() and (repository / "objects").is_dir():
        return repository
    return None


def _shared_directories(git_dir: Path) -> list[Path]:
    """Where else git reads objects from: a worktree's common directory, alternates."""
    places: list[Path] = []
    common_file = git_dir / "commondir"
    common = git_dir
    if common_file.is_file():
        common = (git_dir / common_file.read_text().strip()).resolve(strict=True)
        places.append(common)
    for objects in {git_dir / "objects", common / "objects"}:
        alternates = objects / "info" / "alternates"
        if alternates.is_file():
            for line in alternates.read_text().splitlines():
                if line.strip() and not line.startswith("#"):
                    places.append((objects / line.strip()).resolve())
    return places
