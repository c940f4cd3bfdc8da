"""Notifications through the outbox, end to end: the real daemon process delivers to a real
SMTP server, a real HTTP receiver and a real folder; delivery survives kill -9 without
sending a confirmed notice twice; failures retry, dead-letter and are retried by an op."""

from __future__ import annotations

import json
import ssl
import time

import trustme
from bo_support import line, read_db, stock, submit
from notify_support import HookServer, SmtpServer, wait_for

FAST = """
[notifications]
backoff_base_s = 0.05
backoff_max_s = 0.2
"""


def smtp_config(port: int, **notif) -> str:
    extra = "".join(f"{k} = {v}\n" for k, v in notif.items())
    return (
        FAST + extra + '[notifications.routes]\n"*" = "email"\n'
        f'[notifications.smtp]\nhost = "127.0.0.1"\nport = {port}\nsender = "shop@example.com"\n'
    )


def backorder_order(c, n: int, sku: str = "SKU-A", qty: int = 2) -> dict:
    return submit(
        c,
        f"ext-{n}",
        line(sku, qty),
        email=f"customer{n}@example.com",
        order_number=f"#{1000 + n}",
        customer={"name": f"Customer {n}"},
        shipping_address={"name": f"Customer {n}"},
    )


def notices(c, **filters) -> list[dict]:
    return c.call("notifications.list", limit=1000, **filters)["notifications"]


def test_email_notices_reach_a_real_smtp_server_with_their_content_and_headers(sim):
    with SmtpServer() as smtp:
        d = sim(smtp_config(smtp.port) + '[skus."SKU-A"]\nreorder_point = 0\norder_up_to = 10\n')
        with d.client() as c:
            order = backorder_order(c, 1)
            got = wait_for(lambda: smtp.sink.messages, what="the backordered mail")
            ((rcpt, msg),) = got
            assert rcpt == ["customer1@example.com"]
            assert msg["To"] == "customer1@example.com"
            assert msg["From"] == "shop@example.com"
            assert msg["Subject"] == "Order #1001: some items are backordered"
            (n,) = notices(c, order_id=order["order_id"])
            assert msg["Message-ID"] == f"<{n['notice_id']}@backorder.local>"
            assert msg["X-Backorder-Kind"] == "backordered"
            text = msg.get_body(("plain",)).get_content()
            html = msg.get_body(("html",)).get_content()
            # the expected date is the reorder's: clock starts 2024-03-01, lead time 7 days
            assert "2 x SKU-A: 2 waiting, expected 2024-03-08" in text
            assert "<b>#1001</b>" in html and "2024-03-08" in html
            wait_for(lambda: notices(c, status="sent"), what="the notice marked sent")
            (sent,) = notices(c, status="sent")
            assert sent["attempts"] == 1 and sent["kind"] == "backordered"
            # the attempt and its outcome are in the audit trail of the order
            types = [r["type"] for r in c.call("audit.query", order_id=order["order_id"])["records"]]
            assert types[-2:] == ["notice_attempted", "notice_delivered"]
            stats = c.call("stats")["notifications"]
            assert stats["sent"] == 1 and stats["pending"] == 0 and stats["oldest_pending_at"] is None
        assert read_db(d.db, "SELECT status FROM outbox") == [("sent",)]


def test_shipped_and_cancelled_notices_carry_tracking_and_reason(sim):
    with SmtpServer() as smtp:
        d = sim(smtp_config(smtp.port, tracking_url='"https://t.example/?n={tracking}"'))
        with d.client() as c:
            stock(c, "SKU-S", 5)
            o1 = submit(c, "s1", line("SKU-S", 2), email="a@example.com", order_number="#1")
            sid = c.call("shipments.list", order_id=o1["order_id"])["shipments"][0]["shipment_id"]
            tracking = c.call("pick.confirm", shipment_id=sid)["tracking_number"]
            o2 = submit(c, "s2", line("SKU-S", 9), email="b@example.com", order_number="#2")
            c.call("order.cancel", order_id=o2["order_id"], reason="Customer changed their mind.")
            wait_for(lambda: len(smtp.sink.messages) == 3, what="three mails")
            by_subject = {m["Subject"]: m for _, m in smtp.sink.messages}
            shipped = by_subject["Order #1 has shipped"].get_body(("plain",)).get_content()
            assert f"Tracking number: {tracking}" in shipped
            assert f"https://t.example/?n={tracking}" in shipped
            cancelled = by_subject["Order #2 was cancelled"].get_body(("plain",)).get_content()
            assert "Customer changed their mind." in cancelled
            assert "Order #2: some items are backordered" in by_subject


def test_kill_9_mid_delivery_sends_no_confirmed_notice_twice(sim):
    """The SMTP server holds each mail's answer for a while; the daemon is killed while one
    mail is in flight (its data sent, no answer yet). After the restart every notice
    arrives; no notice confirmed delivered is sent again, and the one cut off is sent again
    with the SAME Message-ID, so the receiver can recognise the repeat."""
    with SmtpServer(delay_s=0.4) as smtp:
        sink = smtp.sink
        d = sim(smtp_config(smtp.port))
        with d.client() as c:
            for n in range(8):
                backorder_order(c, n)

            def in_flight():
                with sink.lock:
                    return len(sink.messages) >= 3 and len(sink.started) == len(sink.messages) + 1

            wait_for(in_flight, what="three mails answered and the fourth in flight")
        d.kill9()
        with sink.lock:
            cut = sink.started[-1]
            answered_before = [m["Message-ID"] for _, m in sink.messages]
        d.start()
        with d.client() as c:
            wait_for(lambda: len(notices(c, status="sent")) == 8, timeout=40, what="all 8 notices sent")
            ids = {n["notice_id"] for n in notices(c)}
        received = sink.ids()
        assert {f"<{i}@backorder.local>" for i in ids} == set(received)
        attempts = dict(
            read_db(
                d.db,
                "SELECT json_extract(body, '$.notice_id'), COUNT(*) FROM events "
                "WHERE type = 'notice_attempted' GROUP BY 1",
            )
        )
        for nid in ids:
            mid = f"<{nid}@backorder.local>"
            if mid == cut:  # attempted, never confirmed: sent again with the same id
                assert attempts[nid] == 2
                assert 1 <= received.count(mid) <= 2
            else:
                assert (attempts[nid], received.count(mid)) == (1, 1), nid
        assert cut not in answered_before and len(answered_before) >= 3


def test_webhook_signed_retried_dead_lettered_and_retried_once(sim, monkeypatch):
    secret = b"hook-secret-for-tests"
    monkeypatch.setenv("BO_TEST_HOOK_SECRET", secret.decode())
    with HookServer(secret) as hook_server:
        hook = hook_server.hook
        hook.fail_next = 2
        d = sim(
            FAST + 'max_attempts = 3\n[notifications.routes]\n"web" = "webhook"\n"*" = "none"\n'
            f'[notifications.webhook]\nurl = "{hook_server.url}"\nsecret_env = "BO_TEST_HOOK_SECRET"\n'
        )
        with d.client() as c:
            first = backorder_order(c, 1)
            wait_for(lambda: hook.delivered(), what="the first webhook delivered")
            (n1,) = notices(c, order_id=first["order_id"])
            wait_for(lambda: notices(c, status="sent"), what="sent status")
            assert [r[3] for r in hook.requests] == [503, 503, 200]
            assert all(r[2] for r in hook.requests), "every request carried a valid signature"
            assert {r[0]["Idempotency-Key"] for r in hook.requests} == {n1["notice_id"]}
            body = hook.delivered()[0]
            assert body["notice_id"] == n1["notice_id"] and body["kind"] == "backordered"
            # the default policy reorders the shortfall: lead time 7 days from 2024-03-01
            assert body["data"]["lines"] == [
                {"line_no": 1, "sku": "SKU-A", "qty": 2, "waiting": 2, "expected_date": "2024-03-08"}
            ]
            types = [r["type"] for r in c.call("audit.query", order_id=first["order_id"])["records"]]
            assert types.count("notice_failed") == 2 and types[-1] == "notice_delivered"

            # an order of another sales channel takes the "*" route: none - no notice at all
            other = submit(c, "mkt-1", line("SKU-A", 1), channel="marketplace", email="m@example.com")
            assert notices(c, order_id=other["order_id"]) == []

            hook.down = True
            second = backorder_order(c, 2)
            wait_for(lambda: notices(c, status="dead"), what="the notice dead after 3 attempts")
            (dead,) = notices(c, status="dead")
            assert dead["order_id"] == second["order_id"] and dead["attempts"] == 3
            assert dead["last_error"] == "DeliveryError: HTTP 500"
            stats = c.call("stats")["notifications"]
            assert stats["dead"] == 1 and stats["failed_attempts"] == 5
            seen = len(hook.requests)
            assert seen == 6  # no further attempts once dead

            hook.down = False
            assert c.call("notifications.retry", notice_id=dead["notice_id"]) == {"retried": [dead["notice_id"]]}
            wait_for(lambda: len(notices(c, status="sent")) == 2, what="the retried notice sent")
            key = dead["notice_id"]
            assert [r[3] for r in hook.requests if r[0]["Idempotency-Key"] == key] == [500, 500, 500, 200]
            err = c.request("notifications.retry", notice_id=key)
            assert err["error"]["code"] == "notice_not_dead"
            assert c.call("notifications.retry", all_dead=True) == {"retried": []}
        d.restart()
        with d.client() as c:  # delivered notices stay delivered across a restart: nothing re-sent
            assert len(notices(c, status="sent")) == 2
        assert len([r for r in hook.requests if r[3] == 200]) == 2


def test_file_channel_writes_one_json_per_notice(sim, tmp_path):
    drop = tmp_path / "drop"
    d = sim(FAST + f'[notifications.routes]\n"*" = "file"\n[notifications.file]\ndir = "{drop}"\n')
    with d.client() as c:
        o = backorder_order(c, 1)
        c.call("order.cancel", order_id=o["order_id"])
        wait_for(lambda: len(notices(c, status="sent")) == 2, what="two files")
        files = sorted(p.name for p in drop.iterdir())
        ids = [n["notice_id"] for n in notices(c)]
        assert files == [f"{i}.json" for i in ids]  # and no temporary file left behind
        docs = [json.loads((drop / f).read_text()) for f in files]
        assert [doc["kind"] for doc in docs] == ["backordered", "cancelled"]
        assert docs[1]["subject"] == "Order #1001 was cancelled"


def test_no_route_no_customer_notice_while_a_routed_channel_is_told(sim, tmp_path):
    """A customer notice is queued only when a route is configured for the order's sales
    channel / account; without one the journal keeps the facts and nothing else."""
    drop = tmp_path / "drop"
    d = sim(FAST + f'[notifications.routes]\n"web" = "file"\n[notifications.file]\ndir = "{drop}"\n')
    with d.client() as c:
        # marketplace orders: backordered, then one shipped, one cancelled - every notice kind
        silent = [
            submit(c, f"m{i}", line("SKU-A", 2), channel="marketplace", email=f"m{i}@example.com") for i in (1, 2)
        ]
        assert all(o["status"] == "backordered" for o in silent)
        c.call("stock.receive", sku="SKU-A", qty=2)
        (sh,) = c.call("shipments.list", order_id=silent[0]["order_id"])["shipments"]
        assert c.call("pick.confirm", shipment_id=sh["shipment_id"])["order_status"] == "shipped"
        c.call("order.cancel", order_id=silent[1]["order_id"])
        assert notices(c) == []
        assert c.call("stats")["notifications"]["queued"] == 0
        for o in silent:
            trail = [r["type"] for r in c.call("audit.query", order_id=o["order_id"])["records"]]
            assert "line_backordered" in trail and "notice_queued" not in trail
        assert read_db(d.db, "SELECT count(*) FROM outbox") == [(0,)]

        # the same story on the routed channel is told, and delivered
        told = backorder_order(c, 1)
        (n,) = notices(c)
        assert (n["order_id"], n["kind"], n["channel"]) == (told["order_id"], "backordered", "file")
        assert c.call("stats")["notifications"]["queued"] == 1
        trail = [r["type"] for r in c.call("audit.query", order_id=told["order_id"])["records"]]
        assert "notice_queued" in trail
        wait_for(lambda: notices(c, status="sent"), what="the routed notice delivered")
        assert [p.name for p in drop.iterdir()] == [f"{n['notice_id']}.json"]


def test_bad_notification_requests_are_refused_with_codes(sim_client):
    c = sim_client
    assert c.request("notifications.retry")["error"]["code"] == "invalid_request"
    assert c.request("notifications.retry", notice_id="N9")["error"]["code"] == "unknown_notice"
    assert c.request("notifications.list", status="lost")["error"]["code"] == "invalid_request"


def test_circuit_breaker_stops_attempts_while_open_then_probes(sim, monkeypatch):
    monkeypatch.setenv("BO_TEST_HOOK_SECRET", "s")
    with HookServer(b"s") as hook_server:
        hook = hook_server.hook
        hook.down = True
        d = sim(
            FAST + "max_attempts = 50\nbreaker_failures = 2\nbreaker_reset_s = 1.5\n"
            '[notifications.routes]\n"*" = "webhook"\n'
            f'[notifications.webhook]\nurl = "{hook_server.url}"\nsecret_env = "BO_TEST_HOOK_SECRET"\n'
        )
        with d.client() as c:
            backorder_order(c, 1)
            backorder_order(c, 2)
            wait_for(lambda: len(hook.requests) >= 2, what="two failed attempts")
            assert c.call("health")["notifier"]["breakers"]["webhook"] == "open"
            # well within the reset time: the open breaker lets nothing through (an absence:
            # only time passing can show it)
            time.sleep(0.8)
            assert len(hook.requests) == 2
            hook.down = False
            wait_for(lambda: len(notices(c, status="sent")) == 2, what="both sent after the breaker closed")
            assert [r[3] for r in hook.requests] == [500, 500, 200, 200]
            assert c.call("health")["notifier"]["breakers"]["webhook"] == "closed"
            assert all(n["attempts"] <= 2 for n in notices(c))  # waiting for the breaker used no attempts


DEPLETION = """
[notifications]
depletion_check_s = 0.2
[notifications.routes]
"*" = "file"
[notifications.file]
dir = "drop"
[skus."SKU-D"]
reorder_point = 0
order_up_to = 10
[skus."SKU-E"]
reorder_point = 0
order_up_to = 10
"""


def test_depletion_warning_goes_once_to_the_customers_of_an_overdue_supply(sim):
    d = sim(DEPLETION)
    with d.client() as c:
        c1 = submit(c, "d1", line("SKU-D", 2), email="d1@example.com")
        c2 = submit(c, "d2", line("SKU-D", 3), email="d2@example.com")
        c3 = submit(c, "e1", line("SKU-E", 1), email="e1@example.com")
        (po,) = [r for r in c.call("procurement.list")["requests"] if r["sku"] == "SKU-D"]
        # the supplier's date is now in the past (clock: 2024-03-01): the supply is overdue
        c.call("procurement.confirm", request_id=po["request_id"], expected_date="2024-02-28")

        def warned(o):
            return [n for n in notices(c, order_id=o["order_id"]) if n["kind"] == "depletion"]

        wait_for(lambda: warned(c1) and warned(c2), what="depletion warnings")
        # several more checks (every 0.2 s; a check that warns nobody leaves no trace to
        # wait on, so time passing is the test): each customer is warned once per supply
        time.sleep(0.7)
        assert [len(warned(o)) for o in (c1, c2, c3)] == [1, 1, 0]
        (n,) = warned(c1)
        wait_for(lambda: (d.workdir / "drop" / f"{n['notice_id']}.json").exists(), what="the warning file")
        doc = json.loads((d.workdir / "drop" / f"{n['notice_id']}.json").read_text())
        assert doc["data"]["lines"] == [
            {"line_no": 1, "sku": "SKU-D", "expected_date": "2024-02-28", "request_id": po["request_id"]}
        ]
    d.kill9()
    d.start()
    with d.client() as c:
        time.sleep(0.5)  # more checks after the restart (time passing, as above): still no second warning
        assert [
            len([n for n in notices(c, order_id=o["order_id"]) if n["kind"] == "depletion"]) for o in (c1, c2, c3)
        ] == [1, 1, 0]


def test_smtp_starttls_and_login_with_the_password_from_the_environment(sim, tmp_path, monkeypatch):
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(server_ctx)
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    monkeypatch.setenv("BO_TEST_SMTP_PASSWORD", "correct horse")
    with SmtpServer(tls_context=server_ctx, login=("shop", "correct horse")) as smtp:
        d = sim(
            smtp_config(smtp.port) + f'starttls = true\nca_file = "{ca_file}"\nusername = "shop"\n'
            'password_env = "BO_TEST_SMTP_PASSWORD"\n'
        )
        with d.client() as c:
            backorder_order(c, 1)
            wait_for(lambda: smtp.sink.messages, what="the mail over TLS")
            assert smtp.logins == [("shop", True)]
    monkeypatch.setenv("BO_TEST_SMTP_PASSWORD", "wrong")
    with SmtpServer(tls_context=server_ctx, login=("shop", "correct horse")) as smtp:
        d = sim(
            smtp_config(smtp.port, max_attempts=1) + f'starttls = true\nca_file = "{ca_file}"\n'
            'username = "shop"\npassword_env = "BO_TEST_SMTP_PASSWORD"\n'
        )
        with d.client() as c:
            backorder_order(c, 1)
            (dead,) = wait_for(lambda: notices(c, status="dead"), what="the refused login dead-lettered")
            assert "535" in dead["last_error"]
            assert smtp.sink.messages == [] and smtp.logins == [("shop", False)]


def test_a_site_template_overrides_the_default(sim, tmp_path):
    site = tmp_path / "templates"
    site.mkdir()
    (site / "cancelled.txt").write_text("Sorry about {{ order_number }}\nReason given: {{ reason }}.\n")
    drop = tmp_path / "drop"
    d = sim(
        FAST + f'templates_dir = "{site}"\n[notifications.routes]\n"*" = "file"\n[notifications.file]\ndir = "{drop}"\n'
    )
    with d.client() as c:
        o = backorder_order(c, 1)
        c.call("order.cancel", order_id=o["order_id"], reason="out of season")
        wait_for(lambda: len(notices(c, status="sent")) == 2, what="both notices")
        docs = {doc["kind"]: doc for doc in (json.loads(p.read_text()) for p in drop.iterdir())}
        assert docs["cancelled"]["subject"] == "Sorry about #1001"
        assert docs["cancelled"]["text"] == "Reason given: out of season.\n"
        # the other kinds keep the package's templates
        assert docs["backordered"]["subject"] == "Order #1001: some items are backordered"


def test_a_purchase_order_is_mailed_to_its_supplier_with_its_documents(sim):
    with SmtpServer() as smtp:
        d = sim(
            smtp_config(smtp.port) + '[skus."SKU-P"]\nreorder_point = 0\norder_up_to = 30\n'
            'source = "supplier:ACME"\n[sources.ACME]\nname = "ACME"\nemail = "orders@acme.example"\n'
            'deliver = "email"\nedi = true\n'
        )
        with d.client() as c:
            submit(c, "p1", line("SKU-P", 4))  # no customer email: the customer notice stays unrouted
            (po,) = c.call("procurement.list")["requests"]
            ((rcpt, msg),) = wait_for(lambda: smtp.sink.messages, what="the purchase order mail")
            assert rcpt == ["orders@acme.example"]
            assert msg["Subject"] == f"Purchase order {po['request_id']}"
            files = {part.get_filename(): part.get_content() for part in msg.iter_attachments()}
            rid = po["request_id"]
            assert set(files) == {f"{rid}.pdf", f"{rid}.csv", f"{rid}.x12"}
            csv_text = files[f"{rid}.csv"]
            csv_text = csv_text.decode() if isinstance(csv_text, bytes) else csv_text
            assert f"{rid},po,ACME,1,SKU-P,{po['qty']},EA," in csv_text
            x12 = files[f"{rid}.x12"]
            x12 = x12.decode() if isinstance(x12, bytes) else x12
            assert f"PO1*1*{po['qty']}*EA***VP*SKU-P~" in x12
            assert files[f"{rid}.pdf"][:5] == b"%PDF-"
            (n,) = [n for n in notices(c) if n["audience"] == "supplier"]
            assert n["request_id"] == rid and n["order_id"] is None


def test_sigterm_does_not_wait_for_a_hanging_mail_server(sim):
    with SmtpServer(delay_s=30) as smtp:
        d = sim(smtp_config(smtp.port))
        with d.client() as c:
            backorder_order(c, 1)
            wait_for(lambda: smtp.sink.started, what="the mail in flight")
        t0 = time.monotonic()
        assert d.stop() == 0
        assert time.monotonic() - t0 < 15  # the daemon's grace period (10 s), not the server's 30 s
        smtp.sink.delay_s = 0
        d.start()
        wait_for(lambda: smtp.sink.messages, what="the mail after the restart")
        with d.client() as c:
            wait_for(lambda: notices(c, status="sent"), what="sent")
            (n,) = notices(c)
        assert n["attempts"] == 2  # the cut attempt was repeated...
        assert set(smtp.sink.ids()) == {f"<{n['notice_id']}@backorder.local>"}  # ...with the same id


def test_a_site_template_cannot_reach_python_internals(sim, tmp_path):
    site = tmp_path / "templates"
    site.mkdir()
    marker = tmp_path / "ran"
    # the classic template injection: from any callable to os.system
    (site / "backordered.txt").write_text("{{ cycler.__init__.__globals__.os.system('touch %s') }}\nbody\n" % marker)
    (site / "cancelled.txt").write_text("{{ ''.__class__.__mro__[1].__subclasses__() }}\nbody\n")
    drop = tmp_path / "drop"
    d = sim(
        FAST + f'max_attempts = 1\ntemplates_dir = "{site}"\n[notifications.routes]\n"*" = "file"\n'
        f'[notifications.file]\ndir = "{drop}"\n'
    )
    with d.client() as c:
        o = backorder_order(c, 1)
        c.call("order.cancel", order_id=o["order_id"], reason="x")
        dead = wait_for(
            lambda: len(notices(c, status="dead")) == 2 and notices(c, status="dead"), what="both notices dead"
        )
        for n in dead:
            assert n["last_error"].startswith("template error in "), n["last_error"]
            assert ".txt: SecurityError: " in n["last_error"], n["last_error"]
        assert not drop.exists() or list(drop.iterdir()) == []
    assert not marker.exists()


def test_a_site_template_still_renders_in_the_sandbox(sim, tmp_path):
    site = tmp_path / "templates"
    site.mkdir()
    (site / "backordered.txt").write_text(
        "{{ order_number | upper }} {{ lines | length }} line(s)\n"
        "{% for ln in lines %}{{ ln.sku }} x {{ ln.qty }}{% endfor %}\n"
    )
    drop = tmp_path / "drop"
    d = sim(
        FAST + f'templates_dir = "{site}"\n[notifications.routes]\n"*" = "file"\n[notifications.file]\ndir = "{drop}"\n'
    )
    with d.client() as c:
        backorder_order(c, 1)
        wait_for(lambda: notices(c, status="sent"), what="the notice")
        (doc,) = [json.loads(p.read_text()) for p in drop.iterdir()]
        assert doc["subject"] == "#1001 1 line(s)"
        assert doc["text"] == "SKU-A x 2"


def test_a_broken_template_makes_its_notice_dead_at_once_and_spares_the_channel(sim, tmp_path):
    """A template error is the content's fault, not the mail server's: the notice is dead
    after one attempt with the error, the email breaker (which one counted failure would
    open for a minute) stays closed, and the next notice with a good template goes out."""
    site = tmp_path / "templates"
    site.mkdir()
    (site / "cancelled.txt").write_text("Order {{ order_number }} cancelled\n{{ no_such_field }}\n")
    with SmtpServer() as smtp:
        d = sim(
            smtp_config(smtp.port, max_attempts=5, breaker_failures=1, breaker_reset_s=60, templates_dir=f'"{site}"')
        )
        with d.client() as c:
            first = backorder_order(c, 1)
            wait_for(lambda: len(smtp.sink.messages) == 1, what="the first backordered mail")
            c.call("order.cancel", order_id=first["order_id"], reason="changed my mind")
            (dead,) = wait_for(lambda: notices(c, status="dead"), what="the cancelled notice dead")
            assert dead["kind"] == "cancelled" and dead["attempts"] == 1
            assert dead["last_error"].startswith("template error in cancelled.txt: UndefinedError: "), dead
            assert "no_such_field" in dead["last_error"]
            assert c.call("health")["notifier"]["breakers"]["email"] == "closed"
            backorder_order(c, 2)
            wait_for(lambda: len(notices(c, status="sent")) == 2, what="the second backordered notice sent")
            assert [rcpt for rcpt, _ in smtp.sink.messages] == [["customer1@example.com"], ["customer2@example.com"]]
            assert all(m["X-Backorder-Kind"] == "backordered" for _, m in smtp.sink.messages)
            stats = c.call("stats")["notifications"]
            assert stats["dead"] == 1 and stats["failed_attempts"] == 1
            types = [r["type"] for r in c.call("audit.query", order_id=first["order_id"])["records"]]
            assert types[-2:] == ["notice_attempted", "notice_failed"]
            # fixed on disk, the operator retries it and it goes out
            (site / "cancelled.txt").write_text("Order {{ order_number }} cancelled\nReason: {{ reason }}\n")
            assert c.call("notifications.retry", notice_id=dead["notice_id"]) == {"retried": [dead["notice_id"]]}
            ((_, mail),) = wait_for(
                lambda: [m for m in smtp.sink.messages if m[1]["X-Backorder-Kind"] == "cancelled"],
                what="the cancelled mail after the retry",
            )
            assert mail["Subject"] == "Order #1001 cancelled"
