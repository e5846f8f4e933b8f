"""Error answers of the simulated API, as exceptions handlers may raise.

Tree::

    ApiError                 any non-2xx answer carrying a JSON body
    ├── BadRequest           400, malformed JSON or query parameters
    ├── NotFound             404, unknown id or path
    └── ValidationFailed     422, Capsule's ``errors[]`` layout

Handlers raise; :mod:`worker.simulator.guard` turns the exception into a
response so every answer, good or bad, gets the rate-limit headers.
"""

from dataclasses import dataclass
from typing import Any

#: Message Capsule sends for an unknown id or path.
NOT_FOUND_MESSAGE = "Could not find resource"


@dataclass(frozen=True)
class FieldError:
    """One entry of a 422 ``errors`` list."""

    message: str
    field: str
    resource: str = "opportunity"

    def as_json(self) -> dict[str, str]:
        """Return the wire form of the entry."""
        return {"message": self.message, "resource": self.resource, "field": self.field}


class ApiError(Exception):
    """An answer with a non-2xx status and a JSON body."""

    status_code = 500

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def body(self) -> dict[str, Any]:
        """Return the JSON body of the answer."""
        return {"message": self.message}


class BadRequest(ApiError):
    """The request could not be read (400)."""

    status_code = 400


class NotFound(ApiError):
    """The id or path does not exist (404)."""

    status_code = 404

    def __init__(self, message: str = NOT_FOUND_MESSAGE) -> None:
        super().__init__(message)


class ValidationFailed(ApiError):
    """The request was read but breaks a rule (422)."""

    status_code = 422

    def __init__(self, errors: list[FieldError]) -> None:
        super().__init__("Validation Failed")
        self.errors = errors

    def body(self) -> dict[str, Any]:
        """Return Capsule's ``{"message", "errors": [...]}`` body."""
        return {
            "message": self.message,
            "errors": [error.as_json() for error in self.errors],
        }


def invalid(
    message: str, field: str, resource: str = "opportunity"
) -> ValidationFailed:
    """Build a 422 carrying a single field error."""
    return ValidationFailed([FieldError(message, field, resource)])
