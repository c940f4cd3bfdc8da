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


class Rejected(DeliveryError):
    """The receiver answered that the request itself is wrong (a 4xx other than an
    authentication failure or a rate limit): sending it again cannot help, so the notice is
    dead at once with the receiver's message, and the receiver's breaker is not charged."""


class NotYet(DeliveryError):
    """The receiver took the request and is still working on it (an Amazon feed being
    processed): the notice is tried again with backoff (at most ``backoff_max_s`` apart),
    never dead for it, and the receiver answered, so its breaker is not charged."""


class CredentialRejected(DeliveryError):
    """The receiver refused our credential (401/403: expired or revoked token). Every notice
    to it would fail alike: the notifier opens the channel's breaker at once and reports it
    once; the notice stays pending (never dead for this) until the credential is fixed."""


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
