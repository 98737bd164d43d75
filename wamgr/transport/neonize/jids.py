"""JIDs as neonize's protobuf messages: to and from wamgr's ``user[:device]@server`` strings.

The string forms (parsing, formatting) are in ``auth.py``, which needs no neonize; these
build or read neonize's ``JID`` proto, so only a neonize host (and tests) import them.
"""

from __future__ import annotations

from wamgr.transport.neonize.auth import format_jid, parse_jid
from wamgr.transport.neonize.lib import JID


def jid_string(jid: JID) -> str:
    """The string of a JID proto, device number included (what whatsmeow stores)."""
    return format_jid(jid.User, jid.RawAgent, jid.Device, jid.Server)


def device_jid(jid: str) -> JID:
    """The JID proto of a stored device JID, device number included (what GetDevice needs)."""
    user, agent, device, server = parse_jid(jid)
    return JID(User=user, RawAgent=agent, Device=device, Integrator=0, Server=server, IsEmpty=False)


def recipient_jid(to: str) -> JID:
    """The JID proto of a recipient given as phone digits or ``user[:device]@server``.

    Raises ValueError for text that is neither.
    """
    text = to.strip()
    if "@" in text:
        user, _agent, _device, server = parse_jid(text)
    else:
        user, server = "".join(ch for ch in text if ch.isdigit()), "s.whatsapp.net"
        if not user:
            raise ValueError(f"not a phone number or JID: {to!r}")
    return JID(User=user, RawAgent=0, Device=0, Integrator=0, Server=server, IsEmpty=False)
