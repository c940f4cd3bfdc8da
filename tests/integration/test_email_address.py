"""A customer e-mail is one address: lists, display names and header injection are refused
with ``invalid_email`` over the socket and through the intake, and the SMTP channel sends
to exactly one recipient (a real SMTP server counts them)."""

from __future__ import annotations

import base64

import pytest
import trio
from bo_support import line, submit
from notify_support import SmtpServer, wait_for

from backorder.actors.events import NoticeQueued
from backorder.config.settings import SmtpSettings
from backorder.email_address import is_addr_spec
from backorder.notify.channels import DeliveryError
from backorder.notify.render import Rendered
from backorder.notify.smtp import SmtpChannel

BAD = [
    "a@x.example, b@y.example",
    "a@x.example,b@y.example",
    "Ann <a@x.example>",
    "<a@x.example>",
    "a@x.example\r\nBcc: b@y.example",
    "a@x.example b@y.example",
    "a@x.example;b@y.example",
    '"a b"@x.example',
    "a@x",
    "@x.example",
    "a@",
    "a..b@x.example",
    "a@-x.example",
]
GOOD = ["zoë.müller@example.de", "sian.obrien@example.co.uk", "x+tag@mail.example.com", "o'brien@x.example"]


def test_the_check_accepts_one_bare_address_only():
    assert [a for a in GOOD if not is_addr_spec(a)] == []
    assert [a for a in BAD if is_addr_spec(a)] == []


def test_order_submit_refuses_anything_but_one_address(sim_client):
    c = sim_client
    for i, email in enumerate(BAD):
        reply = c.request("order.submit", channel="web", external_id=f"e{i}", lines=[line("A", 1)], email=email)
        assert reply["error"]["code"] == "invalid_email", (email, reply)
    assert c.call("orders.list")["orders"] == []
    for i, email in enumerate(GOOD):
        assert submit(c, f"g{i}", line("A", 1), email=email)["status"]


def test_an_intake_draft_with_an_address_list_is_rejected(sim, monkeypatch):
    monkeypatch.setenv("BO_TEST_CSV_SECRET", "s")
    d = sim('[channels.csv]\nsecret_env = "BO_TEST_CSV_SECRET"\n')
    body = (
        "order_id,order_date,currency,email,sku,qty,unit_price,ship_name,ship_address1,ship_city,"
        "ship_postal_code,ship_country\n"
        'CSV-1,2024-03-01T08:00:00Z,USD,"a@x.example, b@y.example",A,1,2.00,Ann,1 Main St,Town,1000,US\n'
    )
    with d.client() as c:
        res = c.call("order.ingest", channel="csv", headers={}, body_base64=base64.b64encode(body.encode()).decode())
        (order,) = res["orders"]
        assert (order["outcome"], order["code"]) == ("rejected", "invalid_email"), res
        assert c.call("orders.list")["orders"] == []


def _notice(email: str) -> NoticeQueued:
    return NoticeQueued(
        ts=1.7e9,
        notice_id="N0000001",
        order_id="O0000001",
        kind="cancelled",
        email=email,
        subject="",
        body="",
        audience="customer",
        channel="email",
        data={},
    )


def test_the_smtp_channel_sends_to_exactly_one_recipient():
    rendered = Rendered(subject="s", text="t", html="<p>t</p>")
    with SmtpServer() as smtp:
        channel = SmtpChannel(SmtpSettings(host="127.0.0.1", port=smtp.port, sender="shop@example.com"), "shop.example")
        for email in ("a@x.example, b@y.example", "Ann <a@x.example>", "a@x.example\r\nBcc: b@y.example"):
            with pytest.raises(DeliveryError, match="not one e-mail address"):
                trio.run(channel.send, _notice(email), rendered)
        assert smtp.sink.messages == []
        receipt = trio.run(channel.send, _notice("zoë.müller@example.de"), rendered)
        assert receipt.startswith("smtp 127.0.0.1")
        ((rcpt, msg),) = wait_for(lambda: smtp.sink.messages, what="the mail")
        assert rcpt == ["zoë.müller@example.de"]
        assert msg["To"] == "zoë.müller@example.de"
