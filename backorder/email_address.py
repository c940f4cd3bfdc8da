"""One customer e-mail address, strictly: an addr-spec ``local@domain`` and nothing else.

A mail header's address field is a list: ``a@x, b@y`` or ``Name <a@x>`` are valid there,
so a value passed through to ``To:`` mails everyone it names. The stdlib parsers accept
such lists and repair malformed input; this check accepts exactly one bare address:

- local part: a dot-atom (RFC 5322 ``atext`` and non-ASCII letters, RFC 6531), at most
  64 characters; no quoted local parts;
- domain: two or more dot-separated labels of letters, digits and inner hyphens (non-ASCII
  letters allowed), each at most 63 characters;
- at most 254 characters in all; no whitespace, comma, angle bracket, quote, parenthesis or
  control character anywhere.
"""

from __future__ import annotations

import re

from backorder.errors import InvalidInput

_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~\-]|[^\x00-\x7f]"
_LOCAL = re.compile(rf"(?:{_ATEXT})+(?:\.(?:{_ATEXT})+)*")
_LABEL = re.compile(r"(?:[A-Za-z0-9]|[^\x00-\x7f])(?:(?:[A-Za-z0-9\-]|[^\x00-\x7f])*(?:[A-Za-z0-9]|[^\x00-\x7f]))?")


def is_addr_spec(text: str) -> bool:
    """Whether ``text`` is one bare e-mail address (see the module docstring)."""
    if len(text) > 254 or not text.isprintable() or any(ch.isspace() for ch in text):
        return False
    local, at, domain = text.rpartition("@")
    if not at or len(local) > 64 or not _LOCAL.fullmatch(local):
        return False
    labels = domain.split(".")
    return len(labels) >= 2 and all(len(label) <= 63 and _LABEL.fullmatch(label) for label in labels)


def check_email(text: str, where: str = "email") -> None:
    """Refuse anything but "" (no address) or one addr-spec, with ``invalid_email``."""
    if text and not is_addr_spec(text):
        raise InvalidInput("invalid_email", f"{where} {text!r} is not one e-mail address (local@domain)")
