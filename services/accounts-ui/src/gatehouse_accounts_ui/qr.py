"""The otpauth URI as a QR code, inline SVG, for an authenticator app's camera.

segno (pure Python, no dependencies, maintained) draws it: a QR encoder is
not something to write by hand. The SVG is one ``<path>`` of the modules,
with no text of the URI in it, no script and no external reference, so it
is safe to place in the page as markup and needs nothing from the CSP.
"""

from __future__ import annotations

import segno
from markupsafe import Markup

# Error correction M: the URI (about 100 characters) fits a small code that
# phone cameras read from a screen without trouble.
_SCALE = 4


def qr_svg(text: str) -> Markup:
    """``text`` as a QR code in inline SVG (black on white, with its quiet zone)."""
    code = segno.make(text, error="m", micro=False)
    svg = code.svg_inline(scale=_SCALE, dark="#000", light="#fff", svgclass="qr", lineclass=None)
    # segno's own markup: nothing of the input is in it as text.
    return Markup(svg)
