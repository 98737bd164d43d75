"""The QR renderings of wamgr.pairing."""

from __future__ import annotations

import pytest

from wamgr import PairingFailed, TenantState
from wamgr.cli.pairing import pair_tenant
from wamgr.qr import MEDIA_TYPES, qr_png, qr_svg, qr_text, render
from wamgr.transport.sim import SimWhatsApp

CODE = "2@abcDEF123,xyz+/=,key1,key2"


def test_png_is_a_png_image() -> None:
    data = qr_png(CODE)
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    assert len(data) > 100


def test_svg_is_an_svg_document() -> None:
    svg = qr_svg(CODE)
    assert svg.lstrip().startswith("<svg")
    assert svg.rstrip().endswith("</svg>")


def test_text_draws_blocks_on_several_lines() -> None:
    text = qr_text(CODE)
    lines = text.splitlines()
    assert len(lines) > 10
    assert "█" in text


def test_render_knows_every_media_type_and_refuses_others() -> None:
    assert isinstance(render(CODE, "png"), bytes)
    assert isinstance(render(CODE, "svg"), str)
    assert isinstance(render(CODE, "text"), str)
    assert set(MEDIA_TYPES) == {"png", "svg", "text"}
    with pytest.raises(ValueError, match="unknown QR format"):
        render(CODE, "gif")
    with pytest.raises(ValueError):
        qr_png("")


def test_pair_tenant_shows_each_qr_until_the_phone_scans_it(make_manager, clock) -> None:
    sim = SimWhatsApp(auto_pair=False, clock=clock)
    mgr = make_manager(transport=sim, claim_tenants=False)
    shown: list[str] = []
    scanned: list[str] = []

    def show(text: str) -> None:
        shown.append(text)
        if "Linked devices" in text:  # the phone scans what the terminal shows
            scanned.append(sim.scan(sim.pending_pairings()[0]))

    status = pair_tenant(mgr, "shop-1", timeout_s=10, show=show)
    assert status.state is TenantState.CONNECTED and status.jid == scanned[0]
    assert "█" in shown[0]


def test_pair_tenant_gives_up_after_its_timeout(make_manager, clock) -> None:
    sim = SimWhatsApp(auto_pair=False, clock=clock)
    mgr = make_manager(transport=sim, claim_tenants=False)
    shown: list[str] = []
    with pytest.raises(PairingFailed, match=r"within 0\.5 s"):
        pair_tenant(mgr, "shop-1", timeout_s=0.5, show=shown.append)
    assert any("█" in text for text in shown)
