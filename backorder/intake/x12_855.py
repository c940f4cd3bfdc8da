"""X12 855 purchase order acknowledgments from suppliers: see ``x12_supply``."""

from __future__ import annotations

from backorder.intake.x12_supply import parse_855 as parse

NAME = "x12_855"
SIGNATURE_HEADER = None
DEFAULTS: dict = {}

__all__ = ["DEFAULTS", "NAME", "SIGNATURE_HEADER", "parse"]
