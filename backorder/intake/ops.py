"""Socket ops of the intake: order.ingest, intake.alias, sources.health, and the dead-letter
queue views that group and rank intake letters (deadletters.list / retry / discard)."""

from __future__ import annotations

import base64
import binascii
from typing import TYPE_CHECKING

import msgspec
import structlog

from backorder import protocol as p
from backorder.actors import events as ev
from backorder.errors import InvalidInput, NotFound, Rejected
from backorder.intake import governance as g
from backorder.intake.service import letter_impact
from backorder.timeutil import iso_ts

log = structlog.get_logger()

if TYPE_CHECKING:
    from backorder.daemon.handlers import Context
    from backorder.daemon.server import Connection, Reply


def order_ingest(ctx: Context, conn: Connection, req: p.OrderIngest, reply: Reply, corr: str) -> None:
    """Offer one raw delivery to the intake queue; the intake answers once it is decided."""
    ctx.intake.offer(delivery(req), reply.ok, corr)


def intake_alias(ctx: Context, conn: Connection, req: p.IntakeAlias, reply: Reply, corr: str) -> None:
    """Journal a channel SKU -> site SKU alias (or its removal) and answer the channel's aliases."""
    channel, account, csku, sku = req.channel, req.account, req.channel_sku, req.sku
    g.channel_settings(ctx.settings, channel)
    engine = ctx.engine
    engine.context("intake.alias", corr, conn.actor)
    engine.emit(ev.AliasSet(ts=engine.now(), channel=channel, account=account, channel_sku=csku, sku=sku))
    reply.ok(
        {"channel": channel, "account": account, "aliases": dict(engine.world.aliases.get((channel, account), {}))}
    )


def sources_health(ctx: Context, conn: Connection, req: p.SourcesHealth, reply: Reply, corr: str) -> None:
    """Per channel and account: last delivery, outcome rates, silence."""
    reply.ok(ctx.intake.health())


def deadletters_discard(ctx: Context, conn: Connection, req: p.DeadLettersDiscard, reply: Reply, corr: str) -> None:
    """Journal the discard of one dead letter or a cause group, with its reason."""
    reason = req.reason
    letters = select(ctx, req.letter_id, req.cause, req.channel, intake_only=False)
    engine = ctx.engine
    engine.context("deadletters.discard", corr, conn.actor)
    for x in letters:
        engine.emit(ev.DeadLetterDiscarded(ts=engine.now(), letter_id=x.letter_id, reason=reason))
    reply.ok({"discarded": [x.letter_id for x in letters], "reason": reason})


def delivery(req: p.OrderIngest) -> g.Delivery:
    if (req.body is None) == (req.body_base64 is None):
        raise InvalidInput("invalid_request", "give exactly one of body (text) and body_base64 (bytes)")
    if req.body is not None:
        body = req.body.encode()
    else:
        try:
            body = base64.b64decode(req.body_base64, validate=True)
        except (binascii.Error, ValueError):
            raise InvalidInput("invalid_request", "body_base64 is not valid base64") from None
    return g.Delivery(
        channel=req.channel, account=req.account, headers=g.normalise_headers(req.headers), body=body, via="socket"
    )


def select(ctx: Context, letter_id: int | None, cause: str | None, channel: str | None, intake_only: bool = True):
    world = ctx.engine.world
    if (letter_id is None) == (cause is None):
        raise InvalidInput("invalid_request", "give letter_id, or cause (and optionally channel)")
    if letter_id is not None:
        letter = world.dead_letters.get(letter_id)
        if letter is None:
            raise NotFound("unknown_letter", f"no dead letter {letter_id}")
        return [letter]
    now = ctx.engine.now()
    letters = [
        x
        for x in world.dead_letters.values()
        if x.cause == cause and (channel is None or x.channel == channel) and (x.kind == "intake" or not intake_only)
    ]
    if not letters:
        raise NotFound("unknown_letter", f"no dead letters with cause {cause!r}")
    return sorted(letters, key=lambda x: -letter_impact(x, now))


def wants_intake_retry(ctx: Context, req: p.DeadLettersRetry) -> bool:
    if req.cause is not None:
        return True
    letter = ctx.engine.world.dead_letters.get(req.letter_id) if req.letter_id is not None else None
    return letter is not None and letter.kind == "intake"


def retry(ctx: Context, conn: Connection, req: p.DeadLettersRetry, reply: Reply, corr: str) -> None:
    letters = select(ctx, req.letter_id, req.cause, req.channel)

    async def run() -> None:
        # A task of the connection: an exception here would close the connection with every
        # reply it is owed, so it costs this one request instead (as audit.query does).
        try:
            result = await ctx.intake.retry_letters(letters, corr, conn.actor)
        except Rejected as exc:
            reply.error(exc.code, exc.message)
            return
        except Exception as exc:
            log.exception("request_failed", op="deadletters.retry", conn=conn.id)
            reply.error("internal_error", f"{type(exc).__name__}: {exc}")
            return
        reply.ok(result)

    conn.nursery.start_soon(run)


def list_letters(ctx: Context) -> dict:
    """Every dead letter, highest impact first, and the letters grouped by cause."""
    now = ctx.engine.now()
    rows = []
    for x in ctx.engine.world.dead_letters.values():
        row = {**msgspec.to_builtins(x), "at": iso_ts(x.ts), "impact_now": letter_impact(x, now)}
        rows.append(row)
    rows.sort(key=lambda r: -r["impact_now"])  # stable: actor letters keep their order
    groups: dict[tuple, dict] = {}
    for r in rows:
        key = (r["kind"], r["cause"] or r["error"].split(":")[0], r["channel"])
        grp = groups.setdefault(
            key, {"kind": key[0], "cause": key[1], "channel": key[2], "count": 0, "impact": 0.0, "letters": []}
        )
        grp["count"] += 1
        grp["impact"] = round(grp["impact"] + r["impact_now"], 2)
        grp["letters"].append(r["letter_id"])
    return {"dead_letters": rows, "groups": sorted(groups.values(), key=lambda gr: -gr["impact"])}
