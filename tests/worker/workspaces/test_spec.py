"""Workspace names (worker/workspaces/spec.py): a given name over 64 characters is refused
with the limit named; a name taken from a long repository is shortened visibly."""

import pytest

from worker.workspaces.spec import MAX_NAME_CHARS, InvalidWorkspaceSpec, validate_name


def test_a_given_name_over_the_limit_is_refused_not_cut() -> None:
    assert validate_name("n" * MAX_NAME_CHARS, "https://h/r.git") == "n" * MAX_NAME_CHARS
    with pytest.raises(InvalidWorkspaceSpec) as refused:
        validate_name("n" * (MAX_NAME_CHARS + 1), "https://h/r.git")
    assert f"at most {MAX_NAME_CHARS} characters" in refused.value.message


def test_a_name_from_a_long_repository_says_it_was_shortened() -> None:
    long_tail = "x" * 100
    name = validate_name(None, f"https://example.com/team/{long_tail}.git")
    assert len(name) == MAX_NAME_CHARS and name.endswith("…")
    assert validate_name(None, "https://example.com/team/short.git") == "short"
    assert validate_name(None, "/") == "workspace"
