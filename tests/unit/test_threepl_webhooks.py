"""The 3PL providers' webhook checks, on the documented schemes: ShipBob signs with
Standard Webhooks (HMAC-SHA256 over "id.timestamp.body", base64, ``v1,`` prefixed, a
``whsec_`` secret base64-decoded) and a delivery signed more than five minutes from now
either way is refused even when the signature is right."""

from __future__ import annotations

import base64
import hashlib
import hmac

import msgspec
import pytest

from backorder.config.settings import ThreeplSettings
from backorder.threepl.providers import WEBHOOK_TOLERANCE_S, ShipBob

BODY = b'{"reference_id":"O1","shipments":[]}'
NOW = 1_767_600_000


def signed(secret: bytes, wid: str, ts: str, body: bytes = BODY) -> dict[str, str]:
    mac = hmac.new(secret, f"{wid}.{ts}.".encode() + body, hashlib.sha256).digest()
    return {"webhook-id": wid, "webhook-timestamp": ts, "webhook-signature": "v1," + base64.b64encode(mac).decode()}


@pytest.fixture
def shipbob(monkeypatch) -> ShipBob:
    monkeypatch.setenv("BO_UNIT_SB_HOOK", "s3cret")
    cfg = msgspec.convert({"provider": "shipbob", "webhook_secret_env": "BO_UNIT_SB_HOOK"}, ThreeplSettings)
    return ShipBob(cfg)


def test_a_fresh_signed_delivery_is_taken_and_any_change_to_it_is_not(shipbob):
    h = signed(b"s3cret", "msg_1", str(NOW))
    assert shipbob.verify(h, {}, BODY, now=NOW)
    assert not shipbob.verify(h, {}, BODY + b" ", now=NOW)  # the body changed
    assert not shipbob.verify({**h, "webhook-id": "msg_2"}, {}, BODY, now=NOW)  # the id is signed too
    assert not shipbob.verify({**h, "webhook-signature": "v2," + h["webhook-signature"][3:]}, {}, BODY, now=NOW)
    # several signatures (a rotated secret): one matching is enough
    assert shipbob.verify({**h, "webhook-signature": "v1,AAAA " + h["webhook-signature"]}, {}, BODY, now=NOW)


@pytest.mark.parametrize("skew", [-WEBHOOK_TOLERANCE_S - 1, WEBHOOK_TOLERANCE_S + 1])
def test_a_delivery_signed_more_than_five_minutes_away_is_refused(shipbob, skew):
    ts = str(int(NOW + skew))
    assert not shipbob.verify(signed(b"s3cret", "msg_1", ts), {}, BODY, now=NOW)
    edge = str(int(NOW - WEBHOOK_TOLERANCE_S))
    assert shipbob.verify(signed(b"s3cret", "msg_1", edge), {}, BODY, now=NOW)


def test_a_timestamp_that_is_not_unix_seconds_is_refused(shipbob):
    for ts in ("2026-01-05T09:00:00Z", "-5", "1.5e9", ""):
        assert not shipbob.verify(signed(b"s3cret", "msg_1", ts), {}, BODY, now=NOW)


def test_a_whsec_secret_is_the_base64_of_the_key(monkeypatch):
    key = b"\x01\x02binary-key\xff"
    monkeypatch.setenv("BO_UNIT_SB_HOOK", "whsec_" + base64.b64encode(key).decode().rstrip("="))
    cfg = msgspec.convert({"provider": "shipbob", "webhook_secret_env": "BO_UNIT_SB_HOOK"}, ThreeplSettings)
    sb = ShipBob(cfg)
    assert sb.verify(signed(key, "msg_1", str(NOW)), {}, BODY, now=NOW)
    assert not sb.verify(signed(b"whsec_" + key, "msg_1", str(NOW)), {}, BODY, now=NOW)
