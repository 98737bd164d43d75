"""A pairing QR code as a picture: PNG, SVG, or text for a terminal (through segno).

The code is the string a link reports in its ``Qr`` event (``ConnectionManager.qr``); the
phone's *Linked devices* screen scans any of these renderings. Pure rendering: this module
knows nothing of tenants or the manager, so the HTTP API and the CLI both use it.

    png = qr_png(mgr.qr("shop-1"))          # bytes, image/png
    svg = qr_svg(mgr.qr("shop-1"))          # str, image/svg+xml
    print(qr_text(mgr.qr("shop-1")))        # block characters, for a terminal
"""

from __future__ import annotations

import io

import segno

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
