"""QR codes for invite links, as SVG data URIs (allowed by the page's img-src policy)."""

from __future__ import annotations

import segno


def svg_data_uri(text: str) -> str:
    return segno.make(text, error="m").svg_data_uri(scale=4, border=2)
