"""Text that reaches a terminal: names from a spec or a store are shown, never obeyed.

A spec file, a store's attributes or a problem's name may hold control characters; printed as
they are, ``ESC [ ... m`` sequences recolour, move the cursor, retitle or (on some terminals)
answer back through the keyboard. :func:`printable` writes every control character as an escape
(``\\x1b``, ``\\u202e``), keeping only the newline and the tab that tables and lines are made of.
:class:`Printable` applies it to everything written to a stream (the command line's stdout), and
reports a stream that can no longer be written (a closed pipe, a full disk) as :class:`StreamLost`.
"""

from __future__ import annotations

import re
from typing import Any

# C0 controls except tab and newline, DEL, C1 controls, and the bidirectional overrides and
# isolates that reorder what a terminal shows.
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def _escape(match: re.Match) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def printable(text: str) -> str:
    """``text`` with every control character written as an escape, except newline and tab.

    >>> printable("lr \\x1b[2Jgroup\\n")
    'lr \\\\x1b[2Jgroup\\n'
    """
    return _CONTROL.sub(_escape, text)


class StreamLost(Exception):
    """Writing to the stream failed (``errno`` as the OSError had it): a closed pipe, a full disk."""

    def __init__(self, err: OSError):
        super().__init__(err.strerror or str(err))
        self.errno = err.errno


class Printable:
    """A text stream that writes :func:`printable` text to ``stream`` (other attributes pass through)."""

    def __init__(self, stream: Any):
        self._stream = stream

    def write(self, text: str) -> int:
        try:
            return self._stream.write(printable(text))
        except OSError as err:
            raise StreamLost(err) from None

    def flush(self) -> None:
        try:
            self._stream.flush()
        except OSError as err:
            raise StreamLost(err) from None

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)
