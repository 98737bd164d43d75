"""How an error message repeats a user's value: on one line, and never at length."""

from __future__ import annotations

#: The most characters of a user's value an error message repeats.
SHOWN_CHARS_MAX = 80


def one_line(text: str) -> str:
    """``text`` with every run of white space (line breaks included) as one space and other
    control characters escaped: a driver's multi-line message still makes a one-line error."""
    folded = " ".join(text.split())
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode() for c in folded)


def shown(value: object) -> str:
    """``value`` as an error message shows it: its repr, cut to :data:`SHOWN_CHARS_MAX`
    characters with its length named when longer, so a huge value is not echoed back."""
    if isinstance(value, str) and len(value) > SHOWN_CHARS_MAX:
        return f"{value[:SHOWN_CHARS_MAX]!r}… ({len(value)} characters)"
    return repr(value)
