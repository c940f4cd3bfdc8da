"""The demo's flaky webhook receiver: it checks the signature, and a poisoned notice is
refused exactly until it has died, then accepted once retried (what ``R`` shows)."""

from __future__ import annotations

import hashlib
import hmac
import random

from backorder import demo_services
from backorder.config.settings import parse_settings


def _headers(secret: bytes, body: bytes, notice: str) -> dict[str, str]:
    sig = "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()
    return {"Idempotency-Key": notice, "X-Backorder-Signature": sig}


def test_a_poisoned_notice_dies_then_a_retry_delivers_it():
    hook = demo_services.FlakyHook(b"k", random.Random(1))
    body = b'{"notice_id": "x"}'
    for i in (1, 2):  # the first two are not poisoned (each answered once: 200 or a random 503)
        hook.answer(_headers(b"k", body, f"N{i}"), body)
    notice = "N3"
    answers = [hook.answer(_headers(b"k", body, notice), body) for _ in range(demo_services.MAX_ATTEMPTS)]
    assert answers == [503] * demo_services.MAX_ATTEMPTS
    assert hook.answer(_headers(b"k", body, notice), body) == 200  # the attempt after notifications.retry
    assert hook.recovered == 1 and notice in hook.delivered and hook.poisoned == {notice}


def test_a_bad_signature_is_refused_and_never_delivered():
    hook = demo_services.FlakyHook(b"k", random.Random(1))
    body = b"{}"
    assert hook.answer(_headers(b"other", body, "N1"), body) == 401
    assert hook.bad_signatures == 1 and not hook.delivered


def test_the_notification_tables_are_valid_config(tmp_path):
    text = "\n".join(demo_services.config_toml(2525, "http://127.0.0.1:9/notices", tmp_path / "outbox")) + "\n"
    s = parse_settings(text).notifications
    assert s.routes == demo_services.ROUTES and "*" not in s.routes
    assert s.max_attempts == demo_services.MAX_ATTEMPTS
    assert s.smtp.port == 2525 and s.webhook.secret_env == demo_services.WEBHOOK_SECRET_ENV
