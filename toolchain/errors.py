"""User-facing errors: one line that names the problem and the fix.

Every stage raises EdgecError (or a subclass) for bad input; the CLI prints its message as
`edgec: error: <message>` with a non-zero exit code and no traceback. Anything else that
escapes is a bug in edgec.
"""


class EdgecError(Exception):
    """Bad input or environment; `str(e)` is the one line the user sees."""

    exit_code = 2


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
