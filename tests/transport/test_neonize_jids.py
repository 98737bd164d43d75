"""jids.py: JIDs as neonize's protobuf messages, to and from wamgr's strings."""

from __future__ import annotations

import pytest

from wamgr.transport.neonize.jids import device_jid, jid_string, recipient_jid


@pytest.mark.parametrize(
    "jid",
    ["15550001111:7@s.whatsapp.net", "15550001111.1:3@s.whatsapp.net", "123456789:2@lid"],
)
def test_a_device_jid_keeps_its_device_number_both_ways(jid):
    assert jid_string(device_jid(jid)) == jid


@pytest.mark.parametrize(
    ("to", "user", "server"),
    [
        ("+1 (555) 222-3333", "15552223333", "s.whatsapp.net"),
        ("15550001111:7@s.whatsapp.net", "15550001111", "s.whatsapp.net"),  # to the account
        ("123456789@lid", "123456789", "lid"),
    ],
)
def test_a_recipient_is_an_account_jid(to, user, server):
    proto = recipient_jid(to)
    assert (proto.User, proto.Device, proto.Server) == (user, 0, server)


@pytest.mark.parametrize("to", ["", "  ", "not a number", "15550001111@"])
def test_a_recipient_that_is_neither_phone_nor_jid_is_refused(to):
    with pytest.raises(ValueError):
        recipient_jid(to)
