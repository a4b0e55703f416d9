"""The small tree of errors recon raises.

Each error builds a one-line message a billing analyst understands; the CLI prints
it (no traceback) and exits 1, the notebook forms show it in the form. Anything that
is not a :class:`ReconError` is a bug.
"""

from __future__ import annotations


class ReconError(Exception):
    """Base of every error an analyst may see. ``str(err)`` is the message."""

    exit_code = 1

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class InputError(ReconError):
    """Input that is not what was expected (a field, a file line, an option)."""


class InvalidAmount(InputError):
    """An amount that is not exact money with at most two decimals."""

    def __init__(self, field: str, value: object, expected: str) -> None:
        self.field = field
        self.value = value
        self.expected = expected
        super().__init__(f"{field}: {value!s} is not valid; expected {expected}")


class FileFormatError(InputError):
    """A bad row or segment in an input file: ``file:line: field: what was expected``."""

    def __init__(self, file: str, line: int | None, field: str | None, problem: str) -> None:
        self.file = file
        self.line = line
        self.field = field
        self.problem = problem
        where = f"{file}:{line}" if line is not None else file
        what = f"{field}: {problem}" if field else problem
        super().__init__(f"{where}: {what}")


class NotFound(ReconError):
    """A client, invoice, payer, payment or user that the ledger does not have."""


class PermissionDenied(ReconError):
    """The user lacks the permission the action needs (Billing for money changes)."""


class PaymentRefused(ReconError):
    """A payment that breaks a ledger rule (amount above the open due, wrong payer, ...)."""


class OtherPayersInvoice(PaymentRefused):
    """A ticked invoice's Ins Amt Due is owed by another payer: recorded only when the analyst confirms."""


class IdempotencyConflict(ReconError):
    """The same idempotency key (or remittance trace) was used with different content."""


class LedgerError(ReconError):
    """The ledger file cannot be opened or written (locked, wrong key, damaged)."""


class ProcessorError(ReconError):
    """The card processor declined, refused or could not be reached."""

    def __init__(self, message: str, *, decline_code: str | None = None) -> None:
        super().__init__(message)
        self.decline_code = decline_code


class LabNotInstalled(ReconError):
    """JupyterLab (the notebook extras) is not installed; the message says which install to run."""


class RemittanceError(ReconError):
    """An 835 file that cannot be read, does not balance, or cannot be posted."""
