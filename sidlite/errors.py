"""The one exception type for mistakes a user can fix: the message says what is wrong and what to do."""


class SidliteError(ValueError):
    """Bad input or settings; the CLI prints its message as one line instead of a traceback."""


def check(condition: bool, message: str) -> None:
    """Raise :class:`SidliteError` with ``message`` unless ``condition`` holds."""
    if not condition:
        raise SidliteError(message)
