"""Config from defaults, a file, the environment and arguments; bad values are refused."""

from __future__ import annotations

import pytest

from wamgr import Config, ConfigError, ConnectionManager, InvalidTenantId
from wamgr.status import validate_tenant_id


def test_defaults_are_the_designs():
    cfg = Config()
    assert (cfg.lease_ttl_s, cfg.renew_interval_s, cfg.renew_deadline_s) == (30.0, 10.0, 20.0)
    assert cfg.claim_interval_s == 5.0 and cfg.stable_after_s == 60.0
    assert cfg.backoff_jitter == 0.0


def test_file_then_env_then_arguments(tmp_path):
    path = tmp_path / "wamgr.toml"
    path.write_text('[wamgr]\nlease_ttl = 40\nrenew_deadline = 25\ntransport = "sim"\n')
    env = {"WAMGR_LEASE_TTL": "50", "WAMGR_CAPACITY": "100"}
    cfg = Config.load(path, env=env, renew_interval=None, instance_id="x")
    assert cfg.lease_ttl_s == 50.0
    assert cfg.renew_deadline_s == 25.0
    assert cfg.capacity == 100
    assert cfg.transport == "sim"
    assert cfg.instance_id == "x"


def test_the_shipped_config_file_loads():
    from pathlib import Path

    cfg = Config.load(Path(__file__).parent.parent / "config" / "wamgr.toml", env={})
    assert cfg.lease_ttl_s == 30.0


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"renew_deadline_s": 30.0}, "renew_deadline .* must be shorter than lease_ttl"),
        ({"renew_interval_s": 20.0}, "renew_interval .* must be shorter than renew_deadline"),
        ({"lease_ttl_s": -1.0}, "lease_ttl_s must be a positive"),
        ({"capacity": 0}, "capacity must be at least 1"),
        ({"backoff_jitter": 1.5}, "fraction"),
        ({"transport": "carrier-pigeon"}, "not one of 'neonize', 'sim'"),
        ({"instance_id": ""}, "instance_id"),
    ],
)
def test_inconsistent_values_are_refused(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        Config(**kwargs)


def test_bad_env_value_names_the_variable():
    with pytest.raises(ConfigError, match="WAMGR_LEASE_TTL"):
        Config.load(env={"WAMGR_LEASE_TTL": "soon"})


def test_unknown_file_setting_is_refused(tmp_path):
    path = tmp_path / "wamgr.toml"
    path.write_text("lease_ttl_s = 40\n")
    with pytest.raises(
        ConfigError, match=r"unknown setting 'lease_ttl_s'.*did you mean 'lease_ttl'"
    ):
        Config.load(path, env={})


@pytest.mark.parametrize("good", ["a", "shop-1", "T_2.x", "x" * 64])
def test_valid_tenant_ids(good):
    assert validate_tenant_id(good) == good


@pytest.mark.parametrize("bad", ["", "x" * 65, "has space", "slash/", "ümlaut", None, 7])
def test_invalid_tenant_ids_say_what_is_allowed(bad):
    with pytest.raises(InvalidTenantId, match="1 to 64 characters"):
        validate_tenant_id(bad)


def test_manager_calls_refuse_invalid_ids(mgr):
    for call in (mgr.connect, mgr.reconnect, mgr.remove, mgr.status, mgr.is_connection_active):
        with pytest.raises(InvalidTenantId):
            call("no spaces allowed")


def test_unreachable_database_is_a_named_error(tmp_path):
    from wamgr import DatabaseUnavailable

    cfg = Config(
        database_url="postgresql://nobody@127.0.0.1:1/none?connect_timeout=1",
        home=tmp_path,
        transport="sim",
        call_timeout_s=2.0,
    )
    with pytest.raises(DatabaseUnavailable, match="WAMGR_DATABASE_URL"):
        ConnectionManager(cfg).start()
