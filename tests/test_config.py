"""Config from defaults, a file, the environment and arguments; bad values are refused."""

from __future__ import annotations

import pytest

from wamgr import Config, ConfigError, InvalidTenantId
from wamgr.status import validate_tenant_id


def test_defaults_are_the_designs():
    cfg = Config()
    assert (cfg.lease_ttl_s, cfg.renew_interval_s, cfg.renew_deadline_s) == (10.0, 2.0, 7.0)
    assert cfg.claim_interval_s == 2.0 and cfg.stable_after_s == 60.0
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
    assert cfg == Config(instance_id=cfg.instance_id, home=cfg.home)  # it holds the defaults


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"renew_deadline_s": 10.0}, "renew_deadline_s .* must be shorter than lease_ttl_s"),
        ({"renew_interval_s": 7.0}, "renew_interval_s .* must be shorter than renew_deadline"),
        ({"lease_ttl_s": -1.0}, "lease_ttl_s must be a positive"),
        ({"capacity": 0}, "capacity must be a whole number from 1 to"),
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


@pytest.mark.parametrize(
    ("line", "meant"),
    [("lease_ttl_s = 40", "lease_ttl"), ('webhook_urls = ["https://x.example"]', "webhook_url")],
)
def test_unknown_file_setting_is_refused(tmp_path, line, meant):
    path = tmp_path / "wamgr.toml"
    path.write_text(line + "\n")
    key = line.split()[0]
    with pytest.raises(ConfigError, match=rf"unknown setting '{key}'.*did you mean '{meant}'"):
        Config.load(path, env={})


@pytest.mark.parametrize("good", ["a", "shop-1", "T_2.x", "x" * 64])
def test_valid_tenant_ids(good):
    assert validate_tenant_id(good) == good


@pytest.mark.parametrize("bad", ["", "x" * 65, "has space", "slash/", "ümlaut", None, 7])
def test_invalid_tenant_ids_say_what_is_allowed(bad):
    with pytest.raises(InvalidTenantId, match="1 to 64 characters"):
        validate_tenant_id(bad)


# --- every setting checked wherever it comes from (#13, defect 5) ---------------------------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"lease_ttl_s": float("nan")}, "lease_ttl_s must be a finite number of seconds, got nan"),
        ({"lease_ttl_s": 1e308}, "lease_ttl_s must be at most 31536000 s, got 1e[+]308"),
        ({"call_timeout_s": float("inf")}, "call_timeout_s must be a finite number"),
        ({"renew_interval_s": 0.002}, "renew_interval_s must be at least 0.1 s, got 0.002"),
        ({"claim_interval_s": 0.001}, "claim_interval_s must be at least 0.05 s"),
        ({"lease_ttl_s": "30"}, "lease_ttl_s must be a number of seconds, got '30'"),
        ({"lease_ttl_s": True}, "lease_ttl_s must be a number of seconds, got True"),
        ({"capacity": 2.5}, "capacity must be a whole number, got 2.5"),
        ({"db_pool_size": 10**9}, "db_pool_size must be a whole number from 2 to 1000"),
        ({"connect_rate": float("nan")}, "connect_rate must be a finite number per second"),
        ({"transport": 5}, "transport must be one of 'neonize', 'sim' or 'sim://HOST:PORT'"),
        ({"transport": "sim://127.0.0.1:99999"}, "port from 1 to 65535"),
        ({"instance_id": 5}, "instance_id must be text, got 5"),
        ({"instance_id": "gw\n1"}, "instance_id must not hold control characters"),
        ({"home": 5}, "home must be a folder path"),
        ({"webhook_urls": 5}, "webhook_urls must be a list of http:// or https:// URLs"),
        ({"clear_auth_on_corruption": "yes"}, "clear_auth_on_corruption must be true or false"),
        ({"database_url": "notaurl"}, "database_url is neither a postgresql://"),
        (
            {"renew_interval_s": 4.0, "renew_deadline_s": 4.05},
            "renew_interval_s .* shorter than renew_deadline_s .* by at least 0.1 s",
        ),
        (
            {"webhook_retry_base_s": 60.0, "webhook_retry_max_s": 5.0},
            "webhook_retry_base_s .* must not exceed webhook_retry_max_s",
        ),
    ],
)
def test_python_values_that_cannot_work_are_refused_by_field_name(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        Config(**kwargs)


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"WAMGR_LEASE_TTL": "nan"}, "WAMGR_LEASE_TTL must be a finite number of seconds"),
        ({"WAMGR_LEASE_TTL": "1e308"}, "WAMGR_LEASE_TTL must be at most 31536000 s"),
        ({"WAMGR_LEASE_TTL": "0.005"}, "WAMGR_LEASE_TTL must be at least 1 s, got 0.005"),
        ({"WAMGR_CALL_TIMEOUT": "inf"}, "WAMGR_CALL_TIMEOUT must be a finite number"),
        ({"WAMGR_CAPACITY": "lots"}, "WAMGR_CAPACITY must be a whole number, got 'lots'"),
        ({"WAMGR_TRANSPORT": "pigeon"}, "WAMGR_TRANSPORT 'pigeon' is not one of"),
        ({"WAMGR_CLEAR_AUTH_ON_CORRUPTION": "maybe"}, "WAMGR_CLEAR_AUTH_ON_CORRUPTION must be"),
        ({"WAMGR_DATABASE_URL": "notaurl"}, "WAMGR_DATABASE_URL is neither a postgresql://"),
        ({"WAMGR_WEBHOOK_URL": "https://"}, "WAMGR_WEBHOOK_URL 'https://' is not an http"),
    ],
)
def test_env_values_that_cannot_work_name_the_variable(env, message):
    with pytest.raises(ConfigError, match=f"^{message}"):
        Config.load(env=env)


def test_a_relation_names_both_settings_as_written_and_what_to_change():
    env = {"WAMGR_RENEW_INTERVAL": "8"}

    with pytest.raises(ConfigError) as refused:
        Config.load(env=env)

    assert refused.value.format_message() == (
        "WAMGR_RENEW_INTERVAL (8 s) must be shorter than renew_deadline (7 s), or one late "
        "renewal fences: lower WAMGR_RENEW_INTERVAL or raise renew_deadline"
    )


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("home = 5", "home must be a folder path \\(text\\), got 5"),
        ("instance_id = 5", "instance_id must be text, got 5"),
        ("webhook_url = 5", "webhook_url must be a list of http:// or https:// URLs, got 5"),
        ('webhook_url = ["ftp://x"]', "webhook_url 'ftp://x' is not an http:// or https:// URL"),
        ("transport = 5", "transport must be one of 'neonize', 'sim' or 'sim://HOST:PORT'"),
        ("call_timeout = 1e308", "call_timeout must be at most 86400 s, got 1e[+]308"),
        ("lease_ttl = nan", "lease_ttl must be a finite number of seconds, got nan"),
        ("capacity = 2.5", "capacity must be a whole number, got 2.5"),
        ("db_pool_size = true", "db_pool_size must be a whole number, got True"),
        ('clear_auth_on_corruption = "no"', "clear_auth_on_corruption must be true or false"),
        ("wamgr = 5", "\\[wamgr\\] must be a table of settings"),
        ("lease_ttl = 40\n[wamgr]\nrenew_interval = 5", "'lease_ttl' is outside \\[wamgr\\]"),
    ],
)
def test_file_values_that_cannot_work_name_the_file_and_the_key(tmp_path, line, message):
    path = tmp_path / "wamgr.toml"
    path.write_text(line + "\n")

    with pytest.raises(ConfigError, match=f"^config file {path}: {message}"):
        Config.load(path, env={})


def test_a_file_that_is_not_utf8_is_refused_in_one_line(tmp_path):
    path = tmp_path / "wamgr.toml"
    path.write_bytes(b'instance_id = "caf\xe9"\n')

    with pytest.raises(ConfigError, match=f"^config file {path} is not UTF-8 text"):
        Config.load(path, env={})


def test_a_folder_given_as_config_file_is_refused_in_one_line(tmp_path):
    with pytest.raises(ConfigError, match=f"^config file {tmp_path} cannot be read"):
        Config.load(tmp_path, env={})


def test_command_line_overrides_are_named_as_the_caller_says():
    with pytest.raises(ConfigError, match=r"^--instance-id must be 1 to 128 characters"):
        Config.load(env={}, names={"instance_id": "--instance-id"}, instance_id="x" * 200)
    with pytest.raises(ConfigError, match=r"^--lease-ttl must be at least 1 s"):
        Config.load(env={}, names={"lease_ttl": "--lease-ttl"}, lease_ttl=0.01)


def test_secrets_are_not_shown_in_messages():
    secret_url = "host=db password=hunter2 this-is-no-conninfo"
    with pytest.raises(ConfigError) as refused:
        Config.load(env={"WAMGR_DATABASE_URL": secret_url})
    assert "hunter2" not in refused.value.format_message()
    with pytest.raises(ConfigError) as refused:
        Config(api_key="key\x00hunter2")
    assert "hunter2" not in refused.value.format_message()


def test_a_hostile_value_is_shown_cut_short():
    with pytest.raises(ConfigError) as refused:
        Config.load(env={"WAMGR_LEASE_TTL": "9" * 100_000 + "x"})
    assert len(refused.value.format_message()) < 200


def test_no_file_is_read_unless_one_is_named(tmp_path, monkeypatch):
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "wamgr.toml").write_text("lease_ttl = 40\n")
    (tmp_path / "wamgr.toml").write_text("lease_ttl = 40\n")
    monkeypatch.chdir(tmp_path)

    assert Config.load(env={}).lease_ttl_s == Config().lease_ttl_s
    named = {"WAMGR_CONFIG": str(tmp_path / "wamgr.toml")}
    assert Config.load(env=named).lease_ttl_s == 40.0


def test_the_defaults_and_the_shipped_file_pass_every_check():
    from pathlib import Path

    from wamgr.config_checks import SETTINGS

    cfg = Config.load(Path(__file__).parent.parent / "config" / "wamgr.toml", env={})
    for setting in SETTINGS:
        value = getattr(cfg, setting.field)
        assert setting.check(value, setting.field) == value
