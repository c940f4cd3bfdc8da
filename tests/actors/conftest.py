"""Trio tests for the tests in this folder only (see ../shared STYLE.md: enabling trio
mode globally would also capture the TUI's asyncio tests)."""

import pathlib

import pytest

_HERE = pathlib.Path(__file__).parent


def pytest_collection_modifyitems(items):
    for item in items:
        if _HERE in pathlib.Path(item.path).parents:
            item.add_marker(pytest.mark.trio)
