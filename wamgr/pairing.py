"""A pairing QR code as a picture: PNG, SVG, or text for a terminal (through segno).

The code is the string a link reports in its ``Qr`` event (``ConnectionManager.qr``); the
phone's *Linked devices* screen scans any of these renderings.

    png = qr_png(mgr.qr("shop-1"))          # bytes, image/png
    svg = qr_svg(mgr.qr("shop-1"))          # str, image/svg+xml
    print(qr_text(mgr.qr("shop-1")))        # block characters, for a terminal

:func:`pair_tenant` is ``wamgr pair``: it connects a tenant and shows its QR codes (or a
pair code) until the phone has linked it.
"""

from __future__ import annotations

import io
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import segno

from wamgr.errors import HeldElsewhere, PairingFailed
from wamgr.status import TenantState, TenantStatus

if TYPE_CHECKING:
    from wamgr.manager import ConnectionManager

#: Media types of the renderings, by format name (``?format=`` of the HTTP API).
MEDIA_TYPES = {"png": "image/png", "svg": "image/svg+xml", "text": "text/plain; charset=utf-8"}

#: Pixels per QR module in PNG and SVG; WhatsApp codes are about 60 modules wide.
DEFAULT_SCALE = 6


def _qr(code: str) -> segno.QRCode:
    if not isinstance(code, str) or not code:
        raise ValueError("a pairing QR needs the code a link reported (a non-empty string)")
    # Low error correction keeps the code small; phones read it from a screen.
    return segno.make(code, error="L", micro=False)


def qr_png(code: str, scale: int = DEFAULT_SCALE) -> bytes:
    """The QR code of ``code`` as a PNG image (black on white, with the quiet zone)."""
    out = io.BytesIO()
    _qr(code).save(out, kind="png", scale=scale)
    return out.getvalue()


def qr_svg(code: str, scale: int = DEFAULT_SCALE) -> str:
    """The QR code of ``code`` as an SVG document."""
    out = io.BytesIO()
    _qr(code).save(out, kind="svg", scale=scale, xmldecl=False)
    return out.getvalue().decode("utf-8")


def qr_text(code: str) -> str:
    """The QR code of ``code`` drawn with block characters (two modules per line).

    Print it on a dark-on-light or light-on-dark terminal alike: the quiet zone is drawn.
    """
    out = io.StringIO()
    _qr(code).terminal(out=out, compact=True)
    return out.getvalue()


def render(code: str, fmt: str) -> bytes | str:
    """The QR code of ``code`` in format ``fmt`` (``png``, ``svg`` or ``text``)."""
    if fmt == "png":
        return qr_png(code)
    if fmt == "svg":
        return qr_svg(code)
    if fmt == "text":
        return qr_text(code)
    raise ValueError(f"unknown QR format {fmt!r}: use one of {', '.join(MEDIA_TYPES)}")


# --- pairing a tenant from a terminal (``wamgr pair``) --------------------------------------

#: Seconds between two looks at the tenant while pairing.
POLL_S = 0.25

#: States a pairing does not come back from by itself.
_GIVEN_UP = frozenset(
    {
        TenantState.LOGGED_OUT,
        TenantState.FAILED,
        TenantState.CONFLICT,
        TenantState.BANNED,
        TenantState.STANDBY,
        TenantState.STOPPED,
    }
)


def pair_tenant(
    mgr: ConnectionManager,
    tenant_id: str,
    timeout_s: float,
    phone: str | None = None,
    show: Callable[[str], None] = print,
) -> TenantStatus:
    """Connect ``tenant_id`` on ``mgr`` and show each QR (or, with ``phone``, a pair code)
    through ``show`` until the tenant is connected; returns that status.

    Raises HeldElsewhere if another live instance holds the tenant, PairingFailed if the
    pairing ends in a parked state (QR not scanned in time, refused...) or is not done
    within ``timeout_s``.
    """
    status = mgr.connect(tenant_id)
    if status.state is TenantState.STANDBY:
        raise HeldElsewhere(tenant_id, status.owner or "another instance", "pair it")
    if status.jid:
        show(f"{tenant_id} is paired as {status.jid} already; connecting it")
    deadline = time.monotonic() + timeout_s
    shown_qr: str | None = None
    code_shown = False
    warned: str | None = None
    pause = threading.Event()
    while True:
        status = mgr.status(tenant_id)
        if status.state is TenantState.CONNECTED:
            return status
        if status.state in _GIVEN_UP:
            raise PairingFailed(tenant_id, str(status.state), status.last_error)
        if status.state is TenantState.BACKOFF and status.last_error != warned:
            warned = status.last_error
            show(f"could not connect ({status.last_error}); retrying at {status.next_retry_at}")
        if status.state is TenantState.PAIRING:
            qr = mgr.qr(tenant_id)
            if qr and qr != shown_qr:
                shown_qr = qr
                show(qr_text(qr))
                show("Scan it on the phone: WhatsApp > Linked devices > Link a device")
            if phone and qr and not code_shown:
                code = mgr.pair_code(tenant_id, phone)
                code_shown = True
                show(
                    f"Pair code for {phone}: {code}  (on the phone: Linked devices > "
                    "Link a device > Link with phone number instead)"
                )
        if time.monotonic() >= deadline:
            why = f"no phone linked the device within {timeout_s:g} s"
            if status.last_error:
                why += f" (last error: {status.last_error})"
            raise PairingFailed(tenant_id, str(status.state), why)
        pause.wait(POLL_S)
