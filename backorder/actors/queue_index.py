"""A SKU's waiting lines in service order, indexed so that a line's place is a lookup.

``QueueIndex`` answers, for a queued line, its 0-based position in service order and the
units waiting ahead of it (``place``) in O(log n + LOAD), and the number of leading lines
a given quantity of supply covers in full (``covered``) in O(log n + LOAD); ``SupplyCurve``
turns "units ahead + this line's need" into the line's expected date with one bisect. So
``order.get`` of a line at the back of 100,000 waiting lines no longer walks the queue.

Layout: the lines sorted by ``line.key`` in buckets of at most ``2 * LOAD`` (the layout of
``sortedcontainers.SortedList``, which cannot carry a sum per bucket), with the highest
key of each bucket in ``_maxes`` and two Fenwick trees over the buckets: lines per bucket
and waiting units per bucket. A change costs a bisect, a list insert or delete of at most
``2 * LOAD`` pointers and one Fenwick update (log2 of the bucket count: 7 steps at 100,000
lines); a split or an emptied bucket rebuilds the trees, O(buckets), once per ``LOAD``
changes at most.

Each line's waiting units are recorded when it is added (``line.need``) and must be told
again with ``update`` whenever its need changes while it waits (a partial allocation, units
taken back): the trees hold those recorded numbers, not a live view.

The service order itself never changes with time: under priority allocation every waiting
line ages at the same rate, so the order depends only on the static part of the rank
(``World.queue_key``). Only a policy change (``rekey``) or a line leaving and re-entering
moves a line, and both go through this class, so the index is exact at every moment, not
only at settle points.
"""

from __future__ import annotations

import heapq
import itertools
from bisect import bisect_left
from collections.abc import Callable, Iterable, Iterator
from typing import Any, Generic, Protocol, TypeVar

LOAD = 512  # bucket size target: a place costs one slice sum of about LOAD/2 ints (~1 us)


class Queueable(Protocol):
    """What the queue needs of a line: its service key (unique per queued line), the
    token of its live entry (nonzero while queued), its waiting units and its order time."""

    key: tuple[Any, ...]
    qtoken: int
    t_order: float

    @property
    def need(self) -> int: ...


class Inbound(Protocol):
    """What the supply curve needs of an open purchase order or transfer."""

    @property
    def request_id(self) -> str: ...

    @property
    def expected_date(self) -> str: ...

    @property
    def open_qty(self) -> int: ...


L = TypeVar("L", bound=Queueable)

_tokens = itertools.count(1)


class QueueIndex(Generic[L]):
    __slots__ = ("_count_tree", "_keys", "_lines", "_maxes", "_need_tree", "_needs", "_oldest", "_total", "_len")

    def __init__(self) -> None:
        self._keys: list[list[tuple[Any, ...]]] = []
        self._lines: list[list[L]] = []
        self._needs: list[list[int]] = []  # the need recorded for each line (see ``update``)
        self._maxes: list[tuple[Any, ...]] = []
        self._count_tree: list[int] = []
        self._need_tree: list[int] = []
        self._len = 0
        self._total = 0
        # (t_order, token, line), lazily deleted: the oldest waiting line under any rule
        self._oldest: list[tuple[float, int, L]] = []

    def __len__(self) -> int:
        return self._len

    def __bool__(self) -> bool:
        return self._len > 0

    @property
    def units(self) -> int:
        """Units the queued lines wait for (the sum of their recorded needs)."""
        return self._total

    # --- changes ------------------------------------------------------------------

    def add(self, line: L) -> None:
        """Queue a line under its current ``line.key`` with its current ``line.need``."""
        token = next(_tokens)
        line.qtoken = token
        key, need = line.key, line.need
        maxes = self._maxes
        if not self._len:
            # Empty: one empty bucket is kept (see ``remove``), so a line that arrives and
            # is served at once (most lines, when there is stock) allocates no lists.
            if not maxes:
                self._keys.append([])
                self._lines.append([])
                self._needs.append([])
                maxes.append(key)
                self._count_tree.append(0)
                self._need_tree.append(0)
            self._keys[0].append(key)
            self._lines[0].append(line)
            self._needs[0].append(need)
            maxes[0] = key
            self._count_tree[0] = 1
            self._need_tree[0] = need
        else:
            if key > maxes[-1]:  # after every queued line: the usual case under FIFO
                b = len(maxes) - 1
                self._keys[b].append(key)
                self._lines[b].append(line)
                self._needs[b].append(need)
                maxes[b] = key
            else:
                b = bisect_left(maxes, key)
                keys = self._keys[b]
                i = bisect_left(keys, key)
                keys.insert(i, key)
                self._lines[b].insert(i, line)
                self._needs[b].insert(i, need)
            if len(self._keys[b]) > 2 * LOAD:
                self._split(b)
            else:
                self._bump(b, 1, need)
        self._len += 1
        self._total += need
        heapq.heappush(self._oldest, (line.t_order, token, line))

    def remove(self, line: L) -> None:
        """Take a line out (nothing if it is not queued)."""
        if not line.qtoken:
            return
        if self._len and self._lines[0][0] is line:  # the head (as in _locate, inlined)
            b = i = 0
        else:
            b, i = self._locate(line)
        line.qtoken = 0
        keys = self._keys[b]
        del keys[i]
        del self._lines[b][i]
        need = self._needs[b].pop(i)
        self._len -= 1
        self._total -= need
        if not self._len:  # the last line: keep its (now empty) bucket for the next one
            self._count_tree[b] = self._need_tree[b] = 0
            self._oldest.clear()
            return
        if not keys:
            self._drop_bucket(b)
        else:
            if i == len(keys):
                self._maxes[b] = keys[-1]
            self._bump(b, -1, -need)
        if len(self._oldest) > 2 * self._len + 1024:
            self.forget_removed()

    def forget_removed(self) -> None:
        """Drop the oldest-heap's entries of lines that left the queue. ``remove`` leaves
        them (lazy deletion) and compacts past ``2 * len + 1024`` of them only: on a SKU
        selling a few lines a day that is most of a year of lines, each kept alive by its
        entry long after its order left memory. The retention sweep calls this once an
        engine day (``retention.forget_removed_lines``)."""
        if len(self._oldest) == self._len:  # nothing stale (most SKUs of a large site)
            return
        live = [e for e in self._oldest if e[1] == e[2].qtoken]
        heapq.heapify(live)
        # In place: the heap keeps its list, which the daemon's collector has frozen
        # (daemon/collector.py). A new list would be scanned, entry by entry, by the next
        # young collection: after the daily sweep compacted ~900 SKUs' heaps (290,000
        # entries), that one collection held the loop 17-20 ms (bench/planner.py).
        self._oldest[:] = live

    def remove_lines(self, lines: list[L]) -> None:
        """Take out lines that left together (each queued). When they are the first
        ``len(lines)`` in service order, as the lines a fill served in full are, whole
        buckets go at once and the trees are rebuilt once: O(buckets + lines) pointer work
        instead of a list delete and a tree update per line."""
        k = len(lines)
        if k < LOAD or k > self._len or any(a is not b for a, b in zip(self.lines(), lines, strict=False)):
            for line in lines:
                self.remove(line)
            return
        whole = done = 0  # buckets that go whole, and their lines
        while done + len(self._lines[whole]) <= k:
            done += len(self._lines[whole])
            whole += 1
            if whole == len(self._lines):
                break
        cut = k - done  # lines cut from the front of the bucket left first
        counts, units = self._points()
        gone = sum(units[:whole])
        del self._keys[:whole], self._lines[:whole], self._needs[:whole], self._maxes[:whole]
        del counts[:whole], units[:whole]
        if cut:
            cut_units = sum(self._needs[0][:cut])
            del self._keys[0][:cut], self._lines[0][:cut], self._needs[0][:cut]
            counts[0] -= cut
            units[0] -= cut_units
            gone += cut_units
        self._build(counts, units)
        for line in lines:
            line.qtoken = 0
        self._len -= k
        self._total -= gone
        if not self._len:
            self._oldest.clear()
        elif len(self._oldest) > 2 * self._len + 1024:
            self.forget_removed()

    def update(self, line: L) -> None:
        """A queued line's need changed in place: record the new one."""
        b, i = self._locate(line)
        needs = self._needs[b]
        delta = line.need - needs[i]
        if delta:
            needs[i] += delta
            self._total += delta
            self._bump(b, 0, delta)

    def rekey(self, keyfn: Callable[[L], tuple[Any, ...]]) -> None:
        """Re-sort after the service rule changed: every live line gets ``keyfn(line)``."""
        lines = list(self)
        self._clear()
        for line in lines:
            line.key = keyfn(line)
            line.qtoken = next(_tokens)
        lines.sort(key=lambda ln: ln.key)
        for start in range(0, len(lines), LOAD):
            chunk = lines[start : start + LOAD]
            self._lines.append(chunk)
            self._keys.append([ln.key for ln in chunk])
            self._needs.append([ln.need for ln in chunk])
            self._maxes.append(chunk[-1].key)
        self._len = len(lines)
        self._total = sum(map(sum, self._needs))
        self._oldest = [(ln.t_order, ln.qtoken, ln) for ln in lines]
        heapq.heapify(self._oldest)
        self._rebuild()

    # --- reads --------------------------------------------------------------------

    def head(self) -> L:
        """The line served next (the queue must not be empty)."""
        return self._lines[0][0]

    def __getitem__(self, index: int) -> L:
        if index != 0:
            raise IndexError("only the head ([0]) is addressable; use first() or place()")
        if not self._len:
            raise IndexError("empty queue")
        return self._lines[0][0]

    def __iter__(self) -> Iterator[L]:
        """Live lines in service order (a copy: the caller may change the queue meanwhile)."""
        return iter([line for bucket in self._lines for line in bucket])

    def lines(self) -> Iterator[L]:
        """Live lines in service order, not copied: do not change the queue while iterating."""
        return itertools.chain.from_iterable(self._lines)

    def first(self, n: int) -> list[L]:
        """The first ``n`` lines in service order."""
        return list(itertools.islice(itertools.chain.from_iterable(self._lines), n))

    def index(self, line: L) -> int:
        """0-based place of a queued line in service order."""
        return self.place(line)[0]

    def place(self, line: L) -> tuple[int, int]:
        """(0-based position in service order, units waiting ahead of it) of a queued line."""
        b, i = self._locate(line)
        needs = self._needs[b]
        if i == len(needs) - 1 and b == len(self._needs) - 1:
            # the back of the queue (a new line under FIFO, as it is promised): every other
            # line is ahead, no walk of the trees nor sum over its bucket
            return self._len - 1, self._total - needs[i]
        count = units = 0
        j = b
        count_tree, need_tree = self._count_tree, self._need_tree
        while j > 0:
            count += count_tree[j - 1]
            units += need_tree[j - 1]
            j &= j - 1
        return count + i, units + sum(self._needs[b][:i])

    def covered(self, supply: int) -> int:
        """How many lines from the head ``supply`` units cover in full."""
        if supply < 0 or not self._len:
            return 0
        # Fenwick descent: the most whole buckets whose units fit in ``supply``
        count_tree, need_tree = self._count_tree, self._need_tree
        n = len(need_tree)
        pos = count = 0
        left = supply
        step = 1 << (n.bit_length() - 1)
        while step:
            nxt = pos + step
            if nxt <= n and need_tree[nxt - 1] <= left:
                pos = nxt
                left -= need_tree[nxt - 1]
                count += count_tree[nxt - 1]
            step >>= 1
        if pos < n:
            for need in self._needs[pos]:
                if need > left:
                    break
                left -= need
                count += 1
        return count

    def oldest(self) -> L | None:
        """The waiting line with the earliest order time (None: the queue is empty)."""
        heap = self._oldest
        while heap and heap[0][1] != heap[0][2].qtoken:
            heapq.heappop(heap)
        return heap[0][2] if heap else None

    # --- internals ----------------------------------------------------------------

    def _locate(self, line: L) -> tuple[int, int]:
        """(bucket, index) of a queued line; ValueError if it is not queued here."""
        if not line.qtoken:
            raise ValueError("line is not queued")
        if self._len and self._lines[0][0] is line:  # the head: every allocation in turn
            return 0, 0
        key = line.key
        b = bisect_left(self._maxes, key)
        if b < len(self._maxes):
            i = bisect_left(self._keys[b], key)
            if i < len(self._lines[b]) and self._lines[b][i] is line:
                return b, i
        raise ValueError("line is not queued under its key (its key changed while it waited?)")

    def _bump(self, b: int, count: int, units: int) -> None:
        count_tree, need_tree = self._count_tree, self._need_tree
        n = len(count_tree)
        while b < n:
            count_tree[b] += count
            need_tree[b] += units
            b |= b + 1

    def _split(self, b: int) -> None:
        """Bucket ``b`` outgrew 2 * LOAD (with a line the trees do not count yet): halve it."""
        keys, lines, needs = self._keys[b], self._lines[b], self._needs[b]
        half = len(keys) // 2
        self._keys.insert(b + 1, keys[half:])
        self._lines.insert(b + 1, lines[half:])
        self._needs.insert(b + 1, needs[half:])
        del keys[half:], lines[half:], needs[half:]
        self._maxes.insert(b, keys[-1])
        counts, units = self._points()
        counts[b : b + 1] = [len(keys), len(self._keys[b + 1])]
        units[b : b + 1] = [sum(needs), sum(self._needs[b + 1])]
        self._build(counts, units)

    def _drop_bucket(self, b: int) -> None:
        """Bucket ``b`` is empty (the trees may still count its last line): remove it."""
        del self._keys[b], self._lines[b], self._needs[b], self._maxes[b]
        counts, units = self._points()
        del counts[b], units[b]
        self._build(counts, units)

    def _points(self) -> tuple[list[int], list[int]]:
        """Lines and units of each bucket, read back from the trees in O(buckets) (summing
        the buckets' needs instead would cost O(lines) per split: a 100,000-line queue
        built by appends splits ~200 times)."""
        counts, units = self._count_tree[:], self._need_tree[:]
        n = len(counts)
        for i in range(n - 1, -1, -1):  # the inverse of _build
            j = i | (i + 1)
            if j < n:
                counts[j] -= counts[i]
                units[j] -= units[i]
        return counts, units

    def _build(self, counts: list[int], units: list[int]) -> None:
        """The Fenwick trees over buckets with these lines and units, in O(buckets)."""
        n = len(counts)
        for i in range(n):
            j = i | (i + 1)
            if j < n:
                counts[j] += counts[i]
                units[j] += units[i]
        self._count_tree, self._need_tree = counts, units

    def _rebuild(self) -> None:
        """The Fenwick trees from the buckets' contents (O(lines): after a re-sort)."""
        self._build([len(k) for k in self._keys], [sum(n) for n in self._needs])

    def _clear(self) -> None:
        for line in self.lines():
            line.qtoken = 0
        self._keys, self._lines, self._needs, self._maxes = [], [], [], []
        self._count_tree, self._need_tree = [], []
        self._len = self._total = 0
        self._oldest = []


class SupplyCurve:
    """A SKU's open supply in the order it arrives: the cumulative open quantity of its
    requests sorted by (expected date, request id). ``date_for(units)`` is the date by which
    ``units`` of it have arrived: the first request whose cumulative quantity reaches them
    (``requests[i]`` is that request: a promise names it)."""

    __slots__ = ("cumulative", "dates", "requests")

    def __init__(self, requests: Iterable[Inbound]) -> None:
        ordered = sorted(requests, key=lambda r: (r.expected_date, r.request_id))
        self.requests = ordered
        self.dates = [r.expected_date for r in ordered]
        self.cumulative = list(itertools.accumulate(r.open_qty for r in ordered))

    @property
    def total(self) -> int:
        return self.cumulative[-1] if self.cumulative else 0

    def date_for(self, units: int) -> str | None:
        i = bisect_left(self.cumulative, units)
        return self.dates[i] if i < len(self.dates) else None


def expected_date(free: int, curve: SupplyCurve, ahead: int, need: int) -> str | None:
    """Expected date of a waiting line with ``ahead`` units waiting before it in service
    order: available stock (``free``) covers the head first, then open supply in date order.
    "now" when stock covers it, the date of the request that completes it, None when open
    supply does not cover it in full (a new reorder will give it a date)."""
    return "now" if need <= 0 else covering_date(free, curve, ahead + need)


def covering_date(free: int, curve: SupplyCurve, units: int) -> str | None:
    """When ``units`` from the head of the queue are covered: "now" by stock, else the date
    of the request that completes them, None if open supply never does."""
    return "now" if units <= free else curve.date_for(units - free)
