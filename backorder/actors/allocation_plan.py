"""One allocation planner: who gets a SKU's units now, and when the rest of each line comes.

Pure and synchronous. The live settle path (``sku_rules.settle``) allocates with
``allocate_now`` and the what-if reads (``actors.whatif``) predict with ``plan``, which
calls the same ``allocate_now`` for the units on hand: so a prediction of a receipt and
the allocations the real receipt makes cannot disagree (tests/unit/test_allocation_plan.py).

The service order is the queue's (``World.queue_key``: FIFO by order time, or priority by
rush, value and aging, expedited lines first); it does not change with time, so planning
is one walk down the queue. Ship-complete orders take their units like any other line
(they hold them until the order is complete); an order's date is the latest of its lines'.

No-harm lending (``lend``): units held for a ship-complete order that cannot complete
before this SKU's next supply restores them are lent to waiting lines that ship now, in
service order (a split order's line may borrow part of its need; a ship-complete
order's line borrows all of it or nothing), when the plan shows that nobody's date
moves: the lender's units come back (it waits again, in its own place) no later than
its order's date from its other lines, and no other waiting line's date gets later.
docs/operations.md has the rule and why.

Dates: available stock covers the head of the queue first, then open supply in the order
it arrives (``queue_index.SupplyCurve``): a line's date is "now" when stock covers it,
the expected date of the request that completes it, or None when open supply never does
(a reorder will give it a date). The same rule as ``World.expected_dates``.
"""

from __future__ import annotations

import datetime as dt
import heapq
import itertools
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Generic, NamedTuple, TypeVar

from backorder.actors.queue_index import Queueable, SupplyCurve, covering_date
from backorder.timeutil import iso_date

L = TypeVar("L", bound=Queueable)


class LinePlan(NamedTuple, Generic[L]):
    """One waiting line's plan: units it gets now from stock, and the date of the rest."""

    line: L
    place: int  # 0-based, in service order
    now: int  # units allocated from stock now
    date: str | None  # "now" | YYYY-MM-DD (the request that completes it) | None (no open supply does)


class Supply(NamedTuple):
    """An open request as the supply curve sees it (what-if supplies are built from these)."""

    request_id: str
    expected_date: str
    open_qty: int


def allocate_now(lines: Iterable[L], available: int) -> list[tuple[L, int]]:
    """Units on hand given to waiting lines in service order: the head first, each up to
    its need, until the units run out. The only allocation rule: settle applies it,
    ``plan`` predicts with it."""
    out: list[tuple[L, int]] = []
    left = available
    if left <= 0:
        return out
    for line in lines:
        need = line.need
        if need <= 0:
            continue
        take = need if need < left else left
        out.append((line, take))
        left -= take
        if not left:
            break
    return out


def plan(lines: Iterable[L], available: int, supply: SupplyCurve, limit: int | None = None) -> list[LinePlan[L]]:
    """The plan of every waiting line (the first ``limit``), in service order."""
    queue, nows, dates = schedule(lines, available, supply, limit)
    return [LinePlan(line, place, nows[place], dates[place]) for place, line in enumerate(queue)]


def schedule(
    lines: Iterable[L], available: int, supply: SupplyCurve, limit: int | None = None
) -> tuple[list[L], list[int], list[str | None]]:
    """``plan`` as three lists (the lines, units now, dates): what the what-if reads
    compare, without a record per line. Units now are ``allocate_now``'s; a line's date is
    ``queue_index.covering_date`` of the units up to and including it, found by walking the
    supply curve once (the units only grow along the queue) instead of a bisect per line."""
    queue = list(lines) if limit is None else list(itertools.islice(lines, limit))
    free = max(available, 0)
    nows = [0] * len(queue)
    given = allocate_now(queue, free)
    if given:
        k = 0
        for place, line in enumerate(queue):
            if line is given[k][0]:
                nows[place] = given[k][1]
                k += 1
                if k == len(given):
                    break
    return queue, nows, _dates([line.need for line in queue], free, supply)


def _dates(needs: Sequence[int], free: int, supply: SupplyCurve) -> list[str | None]:
    """The date of each of ``needs`` (units waiting, in service order) with ``free`` units
    on hand: "now" when stock covers it, else ``covering_date`` of the units up to it."""
    cumulative, supply_dates = supply.cumulative, supply.dates
    n = len(cumulative)
    dates: list[str | None] = []
    append = dates.append
    ahead = j = 0
    for need in needs:
        ahead += need
        if need <= 0 or ahead <= free:
            append("now")
            continue
        units = ahead - free
        while j < n and cumulative[j] < units:
            j += 1
        append(supply_dates[j] if j < n else None)
    return dates


# --- no-harm lending ---------------------------------------------------------------------


# lenders asked per settle (see ``lend``): bench/lending.py measured ~12 us a lender that
# cannot lend (its order's date read from another SKU's plan, the walk to it)
MAX_LENDERS = 32
# ship-complete lines the lenders cannot fill that a settle passes over before it stops
# looking for a borrower behind them: a queue of such lines is not walked to its end
MAX_PASSED = 64


class Lending(NamedTuple, Generic[L]):
    """What lending knows beyond the SKU's queue (``sku_rules.lending`` builds it from the
    model; a what-if builds the same one, so its prediction and the real settle agree)."""

    held: Sequence[tuple[L, int]]  # lines holding units no shipment took: (line, units)
    # a ship-complete order's date from its lines other than this one ("now": none of
    # them waits); None: the line does not lend (another kind of order, or no date known)
    completes: Callable[[L], str | None]
    ships_now: Callable[[L], bool]  # its order ships as soon as this line has all its units
    key: Callable[[L], tuple[Any, ...]]  # the service key a lender waits under again (its own place)
    # its order ships what it has (not ship-complete): it may borrow a part of its need
    splits: Callable[[L], bool]
    # engine time: the rule reads a date before its day (an overdue supply) as that day
    # (``as_of``), as promises and depletion warnings do
    now: float


class Loan(NamedTuple, Generic[L]):
    """``qty`` units of ``lender``'s line given to ``borrower``'s: the plan expects the
    lender's units back by ``back_by`` (its line's date), no later than its order's date
    ``completes``; both as the plan has them after all of the settle's loans (its order's
    date then is the one it had before, or earlier: another loan of the settle may bring
    it forward, never later)."""

    lender: L
    borrower: L
    qty: int
    back_by: str
    completes: str


class _Lender(Generic[L]):
    __slots__ = ("line", "units", "others", "entry")

    def __init__(self, line: L, units: int, others: str) -> None:
        self.line = line
        self.units = units  # still lendable
        self.others = others  # its order's date from its other lines ("now": none waits)
        self.entry = -1  # its index in the walk, once the walk reached it


class _Walk(Generic[L]):
    """The service order as lending sees it, built only as far as it is walked (a loan
    goes to the head of the waiting lines, so a settle rarely lists a long queue): the
    queue lines, with each lender that is not in the queue (it holds all its units) at
    its own key, the units each waits for, and their running sum."""

    __slots__ = ("entries", "needs", "prefix", "today", "_lines", "_next", "_pending", "_given", "_lenders")

    def __init__(
        self,
        lines: Iterable[L],
        given: dict[int, int],
        lenders: list[_Lender[L]],
        key: Callable[[L], Any],
        today: str,
    ) -> None:
        self.today = today  # dates before it count as today (``as_of``)
        self.entries: list[L] = []
        self.needs: list[int] = []
        self.prefix: list[int] = []  # units waiting up to and including each entry
        self._lines = iter(lines)
        self._next: L | None = next(self._lines, None)
        self._pending = sorted(((key(x.line), x) for x in lenders if not x.line.qtoken), key=lambda kx: kx[0])
        self._given = given
        self._lenders = {id(x.line): x for x in lenders}

    def reach(self, i: int) -> bool:
        """Build the walk up to entry ``i``; False if it has fewer entries."""
        entries = self.entries
        while len(entries) <= i:
            nxt, pending = self._next, self._pending
            if pending and (nxt is None or pending[0][0] < nxt.key):
                line, need = pending.pop(0)[1].line, 0
            elif nxt is not None:
                line, need = nxt, nxt.need - self._given.get(id(nxt), 0)
                self._next = next(self._lines, None)
            else:
                return False
            lender = self._lenders.get(id(line))
            if lender is not None:
                lender.entry = len(entries)
            entries.append(line)
            self.needs.append(need)
            self.prefix.append((self.prefix[-1] if self.prefix else 0) + need)
        return True

    def finish(self) -> tuple[list[L], list[int]]:
        while self.reach(len(self.entries)):
            pass
        return self.entries, self.needs

    def move(self, at: int, b: int, qty: int) -> None:
        """``qty`` units of need from entry ``b`` to entry ``at`` (negative: back)."""
        self.needs[at] += qty
        self.needs[b] -= qty
        prefix = self.prefix
        if at < b:
            for k in range(at, b):
                prefix[k] += qty
        else:
            for k in range(b, at):
                prefix[k] -= qty


def lend(
    lines: Callable[[], Iterable[L]],
    given: Sequence[tuple[L, int]],
    available: int,
    supply: SupplyCurve,
    lending: Lending[L],
) -> tuple[list[Loan[L]], _Walk[L] | None]:
    """The loans a settle makes after ``allocate_now`` gave ``given`` out of ``available``
    (``lines()``: the SKU's waiting lines in service order, from the head, as often as asked).

    A lender is a line holding units (held before, or given now) of a ship-complete order
    that is not complete: its other lines wait (``lending.completes`` is their date) or the
    line itself still waits for more. Waiting lines are walked in service order; a line
    whose order cannot ship now is passed over (units would not ship with it); the first
    one that can borrows from the lenders, earliest in service order first, each piece
    the most units that pass the plan: its whole need, or (a line whose order ships what
    it has, ``lending.splits``) as much of it as passes:

    - the lender waits (again, or for more) in its own place, and the date that covers its
      units there (from open supply in date order, as every date of this module) is a
      date no later than its order's date before the loan (the latest of its other lines'
      and its own): the lender's order date does not move;
    - no waiting line between the lender and the borrower in service order (the only ones
      with more units ahead of them) gets a later date.

    A ship-complete order's line the lenders cannot fill harmlessly gets nothing and is
    passed over (loans would not ship it; the lines between keep their dates, so it does
    too), up to ``MAX_PASSED`` of them. The walk stops at the first split order's line
    the lenders cannot fill (it gets what passed): no line behind it is served ahead of
    it; and once the lenders have nothing left. Dates are compared as of the engine's day
    (``as_of``: an overdue one is today). Returns the loans, each dated (``back_by``,
    ``completes``) as the walk stands after all of them, and the walk (None when there was
    no lender)."""
    given_to = {id(line): qty for line, qty in given}
    free = max(available, 0) - sum(given_to.values())
    candidates: dict[int, tuple[L, int]] = {id(line): (line, units) for line, units in lending.held if units > 0}
    for line, qty in given:
        held = candidates.get(id(line))
        candidates[id(line)] = (line, qty + (held[1] if held else 0))
    if not candidates or supply.total <= 0:  # nothing held, or nothing would come back
        return [], None
    # the earliest in service order lend first, and at most MAX_LENDERS are asked their
    # order's date (a read of another SKU's plan each): a settle's cost stays bounded
    asked = heapq.nsmallest(MAX_LENDERS, candidates.values(), key=lambda c: lending.key(c[0]))
    # before any of those reads: a loan goes to a waiting line that could ship, and to a
    # ship-complete order's line only if those asked hold its whole need; without such a
    # line nothing is lent
    most, passed = sum(units for _, units in asked), 0
    for line in lines():
        want = line.need - given_to.get(id(line), 0)
        if want <= 0 or not lending.ships_now(line):
            continue
        if want <= most or lending.splits(line):
            break
        passed += 1  # a ship-complete line those asked cannot fill: the walk passes it over
        if passed > MAX_PASSED:
            return [], None
    else:
        return [], None
    lenders: list[_Lender[L]] = []
    for line, units in asked:
        others = lending.completes(line)
        waits = line.need - given_to.get(id(line), 0) > 0
        if others is not None and (others != "now" or waits):  # its order is not complete
            lenders.append(_Lender(line, units, others))
    if not lenders:  # the common case: no lender, the queue is not even walked
        return [], None
    walk = _Walk(lines(), given_to, lenders, lending.key, iso_date(lending.now))
    lending_ids = {id(x.line) for x in lenders}
    lent: list[tuple[_Lender[L], L, int]] = []  # (lender, borrower, units), dated once all are made
    b = passed = 0
    while walk.reach(b):
        line, want = walk.entries[b], walk.needs[b]
        if want > 0 and id(line) not in lending_ids and lending.ships_now(line):
            part = lending.splits(line)
            # a ship-complete order's line the lenders cannot fill (all or nothing) is
            # passed over, as a line whose order cannot ship is: loans would not ship it,
            # and the check of the lines between keeps its date
            pieces = (
                None
                if not part and want > sum(x.units for x in lenders)
                else _borrow(walk, free, supply, lenders, b, part)
            )
            if pieces is None and part:
                break
            passed += pieces is None
            if passed > MAX_PASSED:
                break
            if pieces:
                lent += [(lender, line, qty) for lender, qty in pieces]
            if walk.needs[b] and part:  # it borrowed a part and still waits: no line behind goes first
                break
            if not any(x.units for x in lenders):
                break
        b += 1
    return _dated(walk, free, supply, lent), walk


def _borrow(
    walk: _Walk[L], free: int, supply: SupplyCurve, lenders: list[_Lender[L]], b: int, part: bool
) -> list[tuple[_Lender[L], int]] | None:
    """Entry ``b``'s need from the lenders (moved in ``walk``), each lending the most units
    that pass the plan: the (lender, units) pieces; None (nothing moved) when that covers
    none of it, or, unless the borrower may take a ``part`` (its order ships what it has),
    not all of it."""
    pieces: list[tuple[_Lender[L], int]] = []
    needs = walk.needs
    for lender in lenders:
        want = needs[b]
        if not want:
            break
        most = min(lender.units, want)
        if not most:
            continue
        while lender.entry < 0 and walk.reach(len(walk.entries)):
            pass  # a lender behind the borrower in service order: walk on to it
        qty = _most_harmless(walk, free, supply, lender, b, most)
        if not qty:
            continue
        walk.move(lender.entry, b, qty)
        lender.units -= qty
        pieces.append((lender, qty))
    if not pieces or (needs[b] and not part):
        for lender, qty in pieces:
            lender.units += qty
            walk.move(lender.entry, b, -qty)
        return None
    return pieces


def _most_harmless(walk: _Walk[L], free: int, supply: SupplyCurve, lender: _Lender[L], b: int, most: int) -> int:
    """The most units, up to ``most``, that ``lender`` can lend entry ``b`` without harm
    (0: not even one). A smaller loan comes back no later and puts fewer units ahead of
    the lines between, so a loan refused whole may pass in part: the largest that passes
    is found by halving."""
    if _harmless(walk, free, supply, lender, b, most):
        return most
    best, lo, hi = 0, 1, most - 1
    while lo <= hi:
        mid = (lo + hi) // 2
        if _harmless(walk, free, supply, lender, b, mid):
            best, lo = mid, mid + 1
        else:
            hi = mid - 1
    return best


def _harmless(walk: _Walk[L], free: int, supply: SupplyCurve, lender: _Lender[L], b: int, qty: int) -> bool:
    """A loan of ``qty`` units from ``lender`` to entry ``b`` moves no date (``lend`` has
    the rule): the lender's units come back (``back_by``) no later than its order's date
    now, and the lines between keep theirs."""
    at = lender.entry
    # its order's date now: its other lines', or its own if it still waits and is later
    own = _waits_until(walk, free, supply, at) if walk.needs[at] > 0 else "now"
    completes = order_date([as_of(lender.others, walk.today), own])
    # the units up to the lender once it waits for more (fewer if the borrower is ahead)
    back_by = _waits_until(walk, free, supply, at, qty if at < b else 0)
    if completes is None or back_by is None or "now" in (completes, back_by) or back_by > completes:
        return False
    return _between_keep_dates(walk, free, supply, at, b, qty)


def _waits_until(walk: _Walk[L], free: int, supply: SupplyCurve, at: int, more: int = 0) -> str | None:
    """The date of entry ``at`` of the walk with ``more`` units ahead of it, as lending
    compares it (``as_of``)."""
    return as_of(covering_date(free, supply, walk.prefix[at] + more), walk.today)


def _dated(walk: _Walk[L], free: int, supply: SupplyCurve, lent: list[tuple[_Lender[L], L, int]]) -> list[Loan[L]]:
    """The settle's loans, each dated once all of them are made: ``back_by``, the lender
    line's date (when its units are back), and ``completes``, its order's date, both as
    the model has them after the settle (before its reorder). A loan checked only that the
    lender's order date did not get later then; a later loan of the same settle may bring
    it forward (its borrower is ahead of the lender: fewer units wait in front of it), so
    the dates a loan saw when it was checked are not the ones to journal. None gets
    later: every loan checks the waiting lines between its lender and borrower, earlier
    lenders included, and its own lender's order date. One date read per loan."""
    loans: list[Loan[L]] = []
    for lender, borrower, qty in lent:
        back_by = _waits_until(walk, free, supply, lender.entry)
        completes = order_date([as_of(lender.others, walk.today), back_by])
        assert back_by is not None and completes is not None  # each loan was checked with no fewer units ahead
        loans.append(Loan(lender.line, borrower, qty, back_by, completes))
    return loans


def _between_keep_dates(walk: _Walk[L], free: int, supply: SupplyCurve, at: int, b: int, qty: int) -> bool:
    """No waiting line between a lender at entry ``at`` and a borrower behind it at ``b``
    gets a later date with ``qty`` more units ahead of it (the lender's, waiting again)."""
    needs = walk.needs
    for k in range(at + 1, b):
        if needs[k] > 0 and _waits_until(walk, free, supply, k, qty) != _waits_until(walk, free, supply, k):
            return False
    return True


def as_of(date: str | None, today: str) -> str | None:
    """A date as lending compares it on ``today``: one before today (its supply is overdue:
    it may come any moment) reads as today, as a promise reads it (``promise_rules``: the
    date a customer is told) and as depletion warnings do. Without it an overdue date looks
    earlier than any supply still to come, and a lender whose other line waits on a late
    supply would never lend, even when this SKU's own supply is as overdue."""
    return today if date is not None and date != "now" and date < today else date


def schedule_lending(
    lines: Iterable[L], available: int, supply: SupplyCurve, lending: Lending[L]
) -> tuple[list[L], list[int], list[str | None], list[Loan[L]]]:
    """``schedule`` as the next settle would leave it: ``allocate_now``, then ``lend``.
    Units now are what each queue line is given (by stock or a loan); dates are those of
    the waiting lines after the loans (a lender waits again for the units it lent)."""
    queue = list(lines)
    given = allocate_now(queue, max(available, 0))
    loans, walk = lend(lambda: queue, given, available, supply, lending)
    got = {id(line): qty for line, qty in given}
    for loan in loans:
        got[id(loan.borrower)] = got.get(id(loan.borrower), 0) + loan.qty
    free = max(available, 0) - sum(qty for _, qty in given)
    if walk is None:
        dates = _dates([line.need - got.get(id(line), 0) for line in queue], free, supply)
    else:  # lenders that wait again are in the walk, not in the answer
        entries, needs = walk.finish()
        queued = {id(line) for line in queue}
        dates = [d for line, d in zip(entries, _dates(needs, free, supply), strict=True) if id(line) in queued]
    return queue, [got.get(id(line), 0) for line in queue], dates, loans


def days_between(old: str | None, new: str | None, today: str) -> int | None:
    """Whole days from date ``old`` to ``new`` ("now" counts as ``today``, the engine's
    date); None if either is unknown (no open supply covers the line)."""
    if old is None or new is None:
        return None
    if old == new:
        return 0
    return (_day(new, today) - _day(old, today)).days


def _day(value: str, today: str) -> dt.date:
    return dt.date.fromisoformat(today if value == "now" else value)


def order_date(dates: Iterable[str | None]) -> str | None:
    """A ship-complete order's date: the latest of its lines' (None if one has none)."""
    latest = "now"
    for d in dates:
        if d is None:
            return None
        if d != "now" and (latest == "now" or d > latest):
            latest = d
    return latest
