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


def policy_tuned(
    sku: str,
    ts: float,
    *,
    daily_mean: float,
    lead_time_days: float,
    lead_time_sd: float,
    new: ev.TunedLevels | None = None,
) -> ev.PolicyTuned:
    """The planner's result for ``sku`` as the journal carries it: a forecast of
    ``daily_mean`` a day over a measured lead time of ``lead_time_days`` ± ``lead_time_sd``.
    With ``new`` levels it is applied (mode auto); without, a suggestion that changes no
    level (mode suggest): only the forecast and the lead time count."""
    old = ev.TunedLevels(reorder_point=0, order_up_to=10, safety_stock=0)
    return ev.PolicyTuned(
        ts=ts,
        sku=sku,
        mode="suggest" if new is None else "auto",
        applied=new is not None,
        old=old,
        new=old if new is None else new,
        demand_class="smooth",
        model="SeasonalES(7)",
        forecast=ev.ForecastSummary(
            daily_mean=daily_mean,
            next_30_days=30 * daily_mean,
            lead_time_demand=daily_mean * lead_time_days,
            error_sd=1.0,
            lead_time_days=lead_time_days,
            lead_time_sd=lead_time_sd,
            lead_time_measured=True,
        ),
        reasons=["a test"],
    )
