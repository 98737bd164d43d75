"""settings.py: the neonize transport's own settings, built from Config in one place
(``wamgr.transport.resolve_transport``)."""

from __future__ import annotations

import dataclasses

import pytest

from wamgr import Config, ConfigError
from wamgr.transport import resolve_transport
from wamgr.transport.neonize import NeonizeSettings, NeonizeTransport

URL = "postgresql://wamgr:secret@db.internal/wamgr"
AUTH_URL = "postgresql://keys:hidden@keys.internal/auth"


def test_the_defaults_are_configs_defaults():
    config = Config()
    settings = NeonizeSettings(URL)
    assert settings.tenants_per_host == config.neonize_tenants_per_host
    assert settings.host_connects == config.neonize_host_connects


@pytest.mark.parametrize("field", ["tenants_per_host", "host_connects"])
@pytest.mark.parametrize("value", [0, -1, 2.5])
def test_a_host_needs_room_for_at_least_one_link(field, value):
    with pytest.raises(ConfigError, match=field):
        NeonizeSettings(URL, **{field: value})


def test_settings_are_frozen_and_do_not_show_the_url():
    settings = NeonizeSettings(URL)
    assert "secret" not in repr(settings)
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.host_connects = 3  # type: ignore[misc]


@pytest.mark.parametrize(
    ("auth_database_url", "keys_in"), [(None, "db.internal"), (AUTH_URL, "keys.internal")]
)
def test_resolve_transport_gives_neonize_only_its_settings(tmp_path, auth_database_url, keys_in):
    config = Config(
        database_url=URL,
        home=tmp_path,
        transport="neonize",
        auth_database_url=auth_database_url,
        neonize_tenants_per_host=3,
        neonize_host_connects=7,
    )
    transport, owned = resolve_transport(config, URL)
    try:
        assert owned
        assert isinstance(transport, NeonizeTransport)
        assert transport.settings == NeonizeSettings(
            auth_database_url or URL, tenants_per_host=3, host_connects=7
        )
        assert transport.store_url.startswith("postgres")
        assert keys_in in transport.store_url
        assert transport.hosts() == []  # no host process until a link opens
    finally:
        transport.close()
