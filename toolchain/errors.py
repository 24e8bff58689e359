"""User-facing errors: one line that names the problem and the fix.

Every stage raises EdgecError (or a subclass) for bad input; the CLI prints its message as
`edgec: error: <message>` with a non-zero exit code and no traceback. Anything else that
escapes is a bug in edgec.
"""


import re

# Control characters (a newline included) that a damaged file's names can carry into a
# message: shown escaped, so the message stays one printable line.
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
MAX_MESSAGE = 2000


def one_line(text: str) -> str:
    """`text` on one line: control characters escaped, at most MAX_MESSAGE characters."""
    text = _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", str(text))
    return text if len(text) <= MAX_MESSAGE else text[:MAX_MESSAGE - 3] + "..."


class EdgecError(Exception):
    """Bad input or environment; `str(e)` is the one line the user sees."""

    exit_code = 2

    def __init__(self, message: object = "", *args: object):
        super().__init__(one_line(str(message)), *args)


class UnsupportedOpError(EdgecError):
    pass


class BudgetError(EdgecError):
    """The model does not fit the target (flash or SRAM)."""

    exit_code = 3


class ToolchainError(EdgecError):
    """Cross compiler or emulator missing or failing."""

    exit_code = 4


class CheckError(EdgecError):
    """The firmware's output differs from the golden model."""

    exit_code = 1
