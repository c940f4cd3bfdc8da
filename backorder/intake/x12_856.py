"""X12 856 advance ship notices from suppliers: see ``x12_supply``."""

from __future__ import annotations

from backorder.intake.x12_supply import parse_856 as parse

NAME = "x12_856"
SIGNATURE_HEADER = None
DEFAULTS: dict = {}

__all__ = ["DEFAULTS", "NAME", "SIGNATURE_HEADER", "parse"]
