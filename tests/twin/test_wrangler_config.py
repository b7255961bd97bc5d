"""wrangler.toml as the local edge reads it; mistakes are named."""

from pathlib import Path

import pytest

from twin.wrangler import WranglerConfigError, load

ROOT = Path(__file__).resolve().parents[2]


def test_the_projects_own_configuration() -> None:
    config = load(ROOT / "wrangler.toml")
    assert config.main_module == "worker.entry"
    assert [d.binding for d in config.d1_databases] == ["DATABASE", "OBSERVABILITY_DATABASE"]
    assert [k.binding for k in config.kv_namespaces] == ["KV"]
    assert [r.binding for r in config.r2_buckets] == ["R2"]
    assert config.crons == ("*/5 * * * *",)
    assert config.assets is not None and config.assets.binding == "ASSETS"
    assert config.assets.not_found_handling == "single-page-application"


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(WranglerConfigError, match="does not exist"):
        load(tmp_path / "wrangler.toml")


def test_invalid_toml(tmp_path: Path) -> None:
    path = tmp_path / "wrangler.toml"
    path.write_text('name = "x"\nmain = ')
    with pytest.raises(WranglerConfigError, match="not valid TOML"):
        load(path)


def test_a_binding_without_its_name_is_named(tmp_path: Path) -> None:
    path = tmp_path / "wrangler.toml"
    path.write_text('name = "x"\nmain = "entry.py"\n[[kv_namespaces]]\nid = "abc"\n')
    with pytest.raises(WranglerConfigError, match=r"\[\[kv_namespaces\]\] has no `binding`"):
        load(path)
