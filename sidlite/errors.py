"""The one exception type for mistakes a user can fix: the message says what is wrong and what to do."""
import math
import numbers
import os
import sys


class SidliteError(ValueError):
    """Bad input or settings; the CLI prints its message as one line instead of a traceback."""


def is_whole(value) -> bool:
    """Whether ``value`` is a whole number (Python's or NumPy's), not a boolean."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def is_real(value) -> bool:
    """Whether ``value`` is a finite real number (Python's or NumPy's), not a boolean."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)


def user_stacklevel() -> int:
    """The ``stacklevel`` that makes a warning point at the first caller outside sidlite (the user's own
    line), however deep inside the package it was raised."""
    package, frame, level = os.path.dirname(os.path.abspath(__file__)), sys._getframe(1), 1
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(package):
        frame, level = frame.f_back, level + 1
    return level


def check(condition: bool, message: str) -> None:
    """Raise :class:`SidliteError` with ``message`` unless ``condition`` holds."""
    if not condition:
        raise SidliteError(message)
