"""Email over SMTP: smtplib on a worker thread (it blocks), STARTTLS and login as
configured. The password is read from the environment variable named by
``notifications.smtp.password_env`` at send time, never from the config file."""

from __future__ import annotations

import email.utils
import os
import smtplib
import ssl
from email.message import EmailMessage

import trio

from backorder.actors.events import NoticeQueued
from backorder.config.settings import SmtpSettings
from backorder.email_address import is_addr_spec
from backorder.notify.channels import DeliveryError
from backorder.notify.render import Rendered


def message_id(notice_id: str, domain: str) -> str:
    """The same for every attempt of a notice: a receiver dedupes on it."""
    return f"<{notice_id}@{domain}>"


class SmtpChannel:
    name = "email"

    def __init__(self, cfg: SmtpSettings, domain: str) -> None:
        self.cfg = cfg
        self.domain = domain
        self._limiter = trio.CapacityLimiter(1)

    def message(self, n: NoticeQueued, r: Rendered) -> EmailMessage:
        msg = EmailMessage()
        msg["Message-ID"] = message_id(n.notice_id, self.domain)
        msg["Date"] = email.utils.formatdate(n.ts, usegmt=True)
        msg["From"] = self.cfg.sender
        msg["To"] = n.email
        msg["Subject"] = r.subject
        msg["X-Backorder-Notice"] = n.notice_id
        msg["X-Backorder-Kind"] = n.kind
        msg.set_content(r.text)
        msg.add_alternative(r.html, subtype="html")
        for name, mime, body in r.attachments:
            maintype, _, subtype = mime.partition("/")
            msg.add_attachment(body, maintype=maintype, subtype=subtype, filename=name)
        return msg

    async def send(self, n: NoticeQueued, r: Rendered) -> str:
        if not n.email:
            raise DeliveryError("no recipient address")
        # orders are checked when they arrive; a notice journaled before that check (or a
        # supplier address from the config) is checked again here, never sent to a list
        if not is_addr_spec(n.email):
            raise DeliveryError(f"recipient {n.email!r} is not one e-mail address")
        msg = self.message(n, r)
        # abandon_on_cancel: a stopping daemon does not wait for a slow server; the attempt
        # has no recorded outcome, so it is made again (same Message-ID) after the restart
        return await trio.to_thread.run_sync(self._send, msg, n.email, limiter=self._limiter, abandon_on_cancel=True)

    def _send(self, msg: EmailMessage, recipient: str) -> str:
        c = self.cfg
        try:
            with smtplib.SMTP(c.host, c.port, timeout=c.timeout_s) as smtp:
                if c.starttls:
                    smtp.starttls(context=ssl.create_default_context(cafile=c.ca_file or None))
                if c.username:
                    password = os.environ.get(c.password_env, "") if c.password_env else ""
                    smtp.login(c.username, password)
                # the envelope names the one recipient: never the addresses parsed from To:
                refused = smtp.send_message(msg, to_addrs=[recipient])
        except smtplib.SMTPException as exc:
            raise DeliveryError(f"smtp: {exc}") from None
        if refused:
            raise DeliveryError(f"smtp refused {sorted(refused)}")
        return f"smtp {c.host}:{c.port} accepted {msg['Message-ID']}"
