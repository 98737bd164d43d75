"""What a tenant tells the supervisor about a close it did not ask for: the link's reason,
corrected by what only the tenant knows.

This is the middle step of the event-to-state chain (docs/architecture.md): the link maps
WhatsApp's event to a CloseReason (``transport/neonize/events.TABLE`` for neonize), this
module corrects it, and the policy (``policy._RULES``) turns it into a state.
"""

from __future__ import annotations

from collections.abc import Callable

from wamgr.actors.tenant_lease import Replacement
from wamgr.transport.base import CloseReason


def reported_cause(
    cause: CloseReason, detail: str, replaced_by: Callable[[], Replacement]
) -> tuple[CloseReason, str]:
    """The reason (and detail) the supervisor hears for a close the tenant did not ask for.

    - a link that closed itself without saying why dropped: ``network``;
    - a 440 while another wamgr instance holds a newer lease means this process was paused
      past its lease: ``lease_lost`` (stand by), not ``conflict``;
    - a 440 from the previous holder's late socket, just after this instance took the lease
      over: ``network`` (back off and reconnect), not ``conflict``;
    - anything else as the link said. ``replaced_by`` is asked only for a 440.
    """
    if cause is CloseReason.REQUESTED:
        return CloseReason.NETWORK, detail
    if cause is CloseReason.REPLACED:
        verdict = replaced_by()
        if verdict is Replacement.SUCCESSOR:
            return CloseReason.LEASE_LOST, detail
        if verdict is Replacement.PREDECESSOR:
            return CloseReason.NETWORK, f"{detail}, by the previous holder's late socket"
    return cause, detail
