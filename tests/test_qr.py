"""The QR renderings of wamgr.qr."""

from __future__ import annotations

import pytest

from wamgr.qr import MEDIA_TYPES, qr_png, qr_svg, qr_text, render

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
