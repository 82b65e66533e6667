"""The one exception type for mistakes a user can fix: the message says what is wrong and what to do."""
import math
import numbers
import os
import re
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


#: The command line's flag for each setting a message may name. Messages name settings as Python does, in
#: backquotes (`memory_budget`, `device='cpu'`); the command line prints them as its flags
#: (:func:`for_command_line`), so neither audience reads the other's names.
FLAGS = {"memory_budget": "--memory-budget", "size": "--size", "patch_size": "--patch-size", "steps": "--steps",
         "query_stride": "--query-stride", "device": "--device", "backend": "--backend", "max_side": "--max-side"}
_KNOB = re.compile(r"`(\w+)(?:=([^`]*))?`")


def for_command_line(message: str) -> str:
    """``message`` with every backquoted setting that has a flag written as that flag (`query_stride=2` as
    --query-stride 2); other backquoted names stay as they are."""
    def flag(match: re.Match) -> str:
        name, value = match.group(1), match.group(2)
        if name not in FLAGS:
            return match.group(0)
        return FLAGS[name] + ("" if value is None else " " + value.strip("'\""))
    return _KNOB.sub(flag, message)


def check(condition: bool, message: str) -> None:
    """Raise :class:`SidliteError` with ``message`` unless ``condition`` holds."""
    if not condition:
        raise SidliteError(message)
