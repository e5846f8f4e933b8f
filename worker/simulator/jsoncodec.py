"""JSON reading and writing that keeps money amounts exact.

Request bodies are parsed with ``decimal.Decimal`` for every non-integer
number, so ``1054.10`` arrives as ``Decimal("1054.10")``. On the way out a
``Decimal`` is written as its own text, never through ``float``, so the
amount a client sent is the amount it reads back, digit for digit.
"""

import json
import re
import secrets
from decimal import Decimal
from typing import Any

from starlette.responses import Response

#: Per-process marker that stands in for a Decimal during encoding; the
#: random part keeps client-supplied strings from ever matching it.
_MARKER = f"~exact-decimal-{secrets.token_hex(8)}~"
_MARKER_PATTERN = re.compile(f'"{re.escape(_MARKER)}([^"]+)"')


class MalformedJSON(ValueError):
    """Raised when a request body is not valid JSON."""


def _encode_decimal(value: object) -> str:
    if isinstance(value, Decimal):
        return _MARKER + str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def dumps(payload: Any) -> str:
    """Encode a payload as compact JSON, writing Decimals verbatim.

    Args:
        payload: JSON-compatible data that may contain ``Decimal`` values.

    Returns:
        The JSON text.
    """
    text = json.dumps(payload, separators=(",", ":"), default=_encode_decimal)
    if _MARKER not in text:
        return text

    return _MARKER_PATTERN.sub(r"\1", text)


def loads(raw: bytes) -> Any:
    """Decode a request body, reading fractional numbers as Decimals.

    Args:
        raw: The body bytes.

    Returns:
        The decoded value.

    Raises:
        MalformedJSON: The body is not valid UTF-8 JSON.
    """
    try:
        return json.loads(raw, parse_float=Decimal)
    except ValueError as exc:
        raise MalformedJSON(f"Request body is not valid JSON: {exc}.") from exc


class ExactJSONResponse(Response):
    """A JSON response whose Decimal values keep their exact digits."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        """Encode the content with :func:`dumps`."""
        return dumps(content).encode("utf-8")
