"""JSON bodies of the channels: integers stay exact Python ints (an order id above 2^53
never passes through a float) and numbers with a fraction become Decimal (money)."""

from __future__ import annotations

from decimal import Decimal

import msgspec

from backorder.errors import ProtocolError

_DECODER = msgspec.json.Decoder(float_hook=Decimal)


def decode(body: bytes) -> dict:
    try:
        doc = _DECODER.decode(body)
    except (msgspec.DecodeError, UnicodeDecodeError) as exc:
        raise ProtocolError("malformed_body", f"the body is not valid JSON: {exc}") from None
    except RecursionError:  # msgspec's answer to arrays / objects nested too deep
        raise ProtocolError("malformed_body", "the body nests arrays or objects too deep") from None
    if not isinstance(doc, dict):
        raise ProtocolError("malformed_body", "the body must be a JSON object")
    return doc
