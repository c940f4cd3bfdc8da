"""Secrets named in the configuration, never written in it: an environment variable or a
file (its first line). Read at each use, so a rotated secret takes effect without a restart.
One reader for every kind: intake signing secrets, write-back and 3PL credentials, carrier
keys, webhook secrets."""

from __future__ import annotations

import os
from pathlib import Path


def read_secret(env: str | None, file: str | None) -> str:
    """The environment variable ``env`` when it is set and not empty, else the first line
    of ``file`` (stripped); "" when neither gives one."""
    if env and os.environ.get(env):
        return os.environ[env]
    if file:
        try:
            lines = Path(file).read_text().splitlines()
        except OSError:
            return ""
        return lines[0].strip() if lines else ""
    return ""


def why_missing(env: str | None, file: str | None) -> str:
    """Why ``read_secret(env, file)`` gave nothing, for the error an operator reads."""
    reasons = []
    if env:
        reasons.append(f"environment variable {env} is not set or empty")
    if file:
        try:
            Path(file).read_text()
            reasons.append(f"{file} is empty")
        except OSError as exc:
            reasons.append(f"cannot read {file}: {exc.strerror}")
    return " and ".join(reasons) or "no secret configured (an *_env or *_file key)"
