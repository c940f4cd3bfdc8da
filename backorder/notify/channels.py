"""The delivery-channel interface and the payload every machine channel carries.

A channel is an adapter: ``name`` and ``async send(notice, rendered) -> str`` that returns a
short receipt (kept in the journal) or raises ``DeliveryError`` (or any OSError). The notice
id travels with every attempt (Message-ID, Idempotency-Key, file name) so a receiver can
recognise a retry after a crash as the same notice.
"""

from __future__ import annotations

import base64
from typing import Protocol

import msgspec

from backorder.actors.events import NoticeQueued
from backorder.notify.render import Rendered
from backorder.timeutil import iso_ts


class DeliveryError(Exception):
    """The receiver refused or could not be reached; the notifier retries."""


class RejectedError(DeliveryError):
    """The receiver refused this request for what it says (an HTTP 4xx other than 401, 403,
    408, 409, 425, 429): the same request would be refused again, so the notice is dead at
    once with the receiver's message, and the receiver's breaker does not count it."""


class CredentialError(DeliveryError):
    """The receiver refused our credentials (401/403, or none configured): every notice to
    it would fail alike, so its breaker opens at once and the failure is reported once per
    opening, not once per notice; the notice stays pending behind the breaker (a credential
    failure never makes it dead: the fix is the operator's, not the notice's)."""


class Channel(Protocol):
    name: str

    async def send(self, notice: NoticeQueued, rendered: Rendered) -> str: ...


def payload(n: NoticeQueued, r: Rendered) -> bytes:
    """The JSON document of a notice (webhook body, file-drop content)."""
    doc = {
        "notice_id": n.notice_id,
        "kind": n.kind,
        "audience": n.audience,
        "order_id": n.order_id,
        "request_id": n.request_id,
        "to": n.email,
        "queued_at": iso_ts(n.ts),
        "subject": r.subject,
        "text": r.text,
        "data": n.data,
        "attachments": [
            {"name": name, "type": mime, "base64": base64.b64encode(body).decode()}
            for name, mime, body in r.attachments
        ],
    }
    return msgspec.json.encode(doc)
