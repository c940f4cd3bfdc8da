"""A model for the pure rules' tests: a World built from a config dict whose ``emit`` does
what the engine does (evolve the model) and also records each event for the test to read."""

from __future__ import annotations

import msgspec

from backorder.actors import events as ev
from backorder.actors.model import World
from backorder.config.settings import Settings


def recording_world(config: dict) -> tuple[World, list[ev.Event]]:
    w = World(msgspec.convert(config, Settings))
    log: list[ev.Event] = []

    def emit(e: ev.Event) -> None:
        w.evolve(e)
        log.append(e)

    w.emit = emit  # type: ignore[attr-defined]
    return w, log
