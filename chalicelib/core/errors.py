"""Domain errors mapped to HTTP answers in one place (validation errors live in validation.py)."""

from __future__ import annotations


class NotFoundError(Exception):
    """The thing named in the path does not exist."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ConflictError(Exception):
    """The request cannot apply to the thing in its current state (reason says why)."""

    def __init__(self, message: str, *, reason: str | None = None, **details: object) -> None:
        super().__init__(message)
        self.message = message
        self.reason = reason
        self.details = details


class TryLaterError(Exception):
    """Nothing was done, and the same request may succeed after retry_after seconds."""

    def __init__(self, message: str, *, retry_after: int, reason: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.retry_after = retry_after
        # Machine-readable: "rate_limited", "budget", ... (in the 429's JSON body).
        self.reason = reason


class StorageError(Exception):
    """DynamoDB could not be reached or refused the request."""


class UnavailableError(Exception):
    """A service this request needs could not answer: nothing was done; retry after a while."""

    def __init__(self, message: str, *, retry_after: int = 5) -> None:
        super().__init__(message)
        self.message = message
        self.retry_after = retry_after


class ConfigurationError(Exception):
    """The deployment's own parameter is unusable (the owner's to fix, not the caller's)."""

    def __init__(self, message: str, parameter: str) -> None:
        super().__init__(message)
        self.message = message
        self.parameter = parameter


class ForbiddenError(Exception):
    """The caller is known but may not do this (a browser user outside the softphone group)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message
