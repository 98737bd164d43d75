"""The tenant actor's send and download handlers: any outgoing kind goes through the
connected link (what the outbound queue will ask for), media comes back from it, and
without a connected link each is refused naming the state."""

from __future__ import annotations

import pytest

from wamgr import MediaUnavailable, NotConnected, TenantState
from wamgr.actors import messages as m
from wamgr.local_tenants import ask
from wamgr.transport.outgoing import check_outgoing

from ..transport.test_outgoing import EVERY_KIND


def _ref(mgr, tenant_id: str):
    local = mgr.runtime.local
    deadline = local.deadline("test")
    return local.lookup(tenant_id, deadline), deadline


def test_every_kind_is_sent_through_the_link_and_media_comes_back(mgr, sim) -> None:
    mgr.connect("t1")
    jid = mgr.wait_for("t1", TenantState.CONNECTED, timeout=5).jid
    ref, deadline = _ref(mgr, "t1")
    messages = [check_outgoing(message) for message in EVERY_KIND]

    ids = [ask(ref, m.Send(message), deadline) for message in messages]
    inbound = sim.deliver_message(jid, "image", media=b"\xff\xd8jpeg", mime="image/jpeg")

    assert [(r.message_id, r.message) for r in sim.outgoing(jid)] == list(
        zip(ids, messages, strict=True)
    )
    assert ask(ref, m.DownloadMedia(inbound), deadline) == (b"\xff\xd8jpeg", "image/jpeg")
    with pytest.raises(MediaUnavailable):
        ask(ref, m.DownloadMedia("never-received"), deadline)


def test_without_a_connected_link_sending_and_downloading_are_refused(mgr) -> None:
    mgr.connect("t1")
    mgr.wait_for("t1", TenantState.CONNECTED, timeout=5)
    ref, deadline = _ref(mgr, "t1")
    mgr.remove("t1")

    with pytest.raises(NotConnected, match="stopped"):
        ask(ref, m.Send(check_outgoing(EVERY_KIND[0])), deadline)
    with pytest.raises(NotConnected, match="stopped"):
        ask(ref, m.DownloadMedia("x"), deadline)
