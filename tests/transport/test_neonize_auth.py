"""auth.py: the store URL neonize gets, JID strings, and device rows deleted one by one."""

from __future__ import annotations

import psycopg
import pytest

from wamgr import ConfigError, DatabaseUnavailable
from wamgr.transport.neonize.auth import DeviceStore, format_jid, parse_jid, store_url

from .conftest import JID, OTHER_JID, insert_device


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        (
            "postgresql://postgres:@/wamgr?host=/tmp/pg",
            "postgresql://postgres:@/wamgr?host=/tmp/pg&application_name=wamgr-neonize",
        ),
        (
            "postgres://u:p@db:5432/x?sslmode=require&application_name=mine",
            "postgres://u:p@db:5432/x?sslmode=require&application_name=mine",
        ),
        (
            "user=postgres dbname=wamgr_t1 host=/tmp/wamgr-test-pg/pgdata",
            "postgres://postgres@/wamgr_t1?host=%2Ftmp%2Fwamgr-test-pg%2Fpgdata"
            "&application_name=wamgr-neonize",
        ),
        (
            "host=db.internal port=6432 user=wa password='p@ss w' dbname=auth",
            "postgres://wa:p%40ss%20w@db.internal:6432/auth?sslmode=prefer"
            "&application_name=wamgr-neonize",
        ),
    ],
)
def test_store_url_is_a_postgres_url_for_lib_pq(given, expected):
    assert store_url(given) == expected


def test_a_store_url_that_names_no_database_is_refused():
    with pytest.raises(ConfigError):
        store_url("not a conninfo at all")


@pytest.mark.parametrize(
    ("text", "parts"),
    [
        ("15550001111:7@s.whatsapp.net", ("15550001111", 0, 7, "s.whatsapp.net")),
        ("15550001111@s.whatsapp.net", ("15550001111", 0, 0, "s.whatsapp.net")),
        ("15550001111.1:3@s.whatsapp.net", ("15550001111", 1, 3, "s.whatsapp.net")),
        ("123456789:2@lid", ("123456789", 0, 2, "lid")),
    ],
)
def test_jids_round_trip_in_whatsmeows_format(text, parts):
    assert parse_jid(text) == parts
    assert format_jid(*parts) == text


def test_a_malformed_jid_is_refused():
    with pytest.raises(ValueError, match="not a WhatsApp JID"):
        parse_jid("15550001111")


def test_a_fresh_database_has_no_device_and_nothing_to_delete(database_url):
    devices = DeviceStore(store_url(database_url))
    assert devices.device_exists(JID) is False  # whatsmeow's tables do not exist yet
    assert devices.delete_device(JID) == 0


def test_deleting_a_device_removes_its_row_and_privacy_tokens_only(database_url):
    for jid in (JID, OTHER_JID):
        insert_device(database_url, jid)
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE whatsmeow_privacy_tokens (our_jid text, their_jid text)")
        for jid in (JID, OTHER_JID):
            conn.execute("INSERT INTO whatsmeow_privacy_tokens VALUES (%s, 'peer')", (jid,))
    devices = DeviceStore(store_url(database_url))
    assert devices.device_exists(JID) and devices.device_exists(OTHER_JID)

    assert devices.delete_device(JID) == 1
    assert not devices.device_exists(JID)
    assert devices.device_exists(OTHER_JID)
    with psycopg.connect(database_url) as conn:
        tokens = [row[0] for row in conn.execute("SELECT our_jid FROM whatsmeow_privacy_tokens")]
    assert tokens == [OTHER_JID]


def test_an_unreachable_auth_store_is_reported_as_such():
    devices = DeviceStore("postgres://nobody@127.0.0.1:1/none?connect_timeout=2")
    with pytest.raises(DatabaseUnavailable, match="auth store is unreachable"):
        devices.device_exists(JID)
