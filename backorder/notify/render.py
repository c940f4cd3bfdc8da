"""Notice content from templates: ``KIND.txt`` (first line = subject, the rest = text body)
and ``KIND.html`` (autoescaped). A site's ``notifications.templates_dir`` is searched first,
so a site overrides one template by giving a file of the same name; the package's
defaults are in ``backorder/notify/templates``.

Rendering happens at delivery time from the journaled ``NoticeQueued.data``: the journal
keeps the facts, the site keeps the wording.

Templates run in Jinja2's immutable sandbox: a site template is text, not code, so one
that reaches for Python internals (``''.__class__.__mro__``) or mutates what it is given
raises ``jinja2.exceptions.SecurityError``. That, a syntax error, a missing template or a
variable the notice does not have (``StrictUndefined``) is a ``RenderError``: the content
is wrong, not the receiver, so the notifier makes the notice dead at once instead of
retrying it against a channel that did nothing wrong.
"""

from __future__ import annotations

import jinja2
import jinja2.sandbox
import msgspec

from backorder.actors.events import NoticeQueued
from backorder.timeutil import iso_ts


class RenderError(Exception):
    """A notice's template could not be rendered; the message names the template and the
    Jinja2 error. Sending it again cannot help: fix the template, then ``notifications.retry``."""


class Rendered(msgspec.Struct, kw_only=True):
    subject: str
    text: str
    html: str
    # (file name, MIME type, content) - supplier documents
    attachments: list[tuple[str, str, bytes]] = []


class Renderer:
    def __init__(self, templates_dir: str = "") -> None:
        loaders: list[jinja2.BaseLoader] = []
        if templates_dir:
            loaders.append(jinja2.FileSystemLoader(templates_dir))
        loaders.append(jinja2.PackageLoader("backorder.notify", "templates"))
        self.env = jinja2.sandbox.ImmutableSandboxedEnvironment(
            loader=jinja2.ChoiceLoader(loaders),
            undefined=jinja2.StrictUndefined,
            autoescape=jinja2.select_autoescape(["html"]),
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=True,
        )

    def render(self, n: NoticeQueued) -> Rendered:
        ctx = {
            **n.data,
            "notice_id": n.notice_id,
            "order_id": n.order_id,
            "kind": n.data.get("kind", n.kind),
            "queued_at": iso_ts(n.ts),
        }
        ctx.setdefault("order_number", n.order_id or "")
        text = self._render(f"{n.kind}.txt", ctx)
        subject, _, body = text.partition("\n")
        html = self._render(f"{n.kind}.html", ctx)
        return Rendered(subject=subject.strip(), text=body.lstrip("\n"), html=html)

    def _render(self, name: str, ctx: dict) -> str:
        try:
            return self.env.get_template(name).render(ctx)
        except jinja2.TemplateError as exc:  # SecurityError, UndefinedError, syntax, not found
            raise RenderError(f"template error in {name}: {type(exc).__name__}: {exc}") from exc
