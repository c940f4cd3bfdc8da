"""A SKU's waiting lines in service order: a binary heap with lazy deletion.

Every order line that waits passes through here (add on arrival, remove when served or
cancelled), so these two must be cheap: ``heapq`` push/pop in C, and removal only marks
the line (its heap entry is skipped when it reaches the top, and the heap is compacted
when stale entries outnumber live ones). Reads in service order (sku.get, expected dates,
queue positions) sort on demand; they are rarer than writes.

Entries are ``(key, token, line)``: ``key`` is unique per line (it ends with the arrival
number), ``token`` tells a live entry from a stale one of the same line after re-queueing.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable, Iterator
from typing import Any, Generic, Protocol, TypeVar


class Queueable(Protocol):
    """What the queue needs of a line: its service key and the token of its live entry."""

    key: tuple[Any, ...]
    qtoken: int


L = TypeVar("L", bound=Queueable)

_tokens = itertools.count(1)


class ServiceQueue(Generic[L]):
    __slots__ = ("_heap", "_live")

    def __init__(self) -> None:
        self._heap: list[tuple[tuple[Any, ...], int, L]] = []
        self._live = 0

    def __len__(self) -> int:
        return self._live

    def __bool__(self) -> bool:
        return self._live > 0

    def add(self, line: L) -> None:
        """Queue a line under its current ``line.key``."""
        token = next(_tokens)
        line.qtoken = token
        heapq.heappush(self._heap, (line.key, token, line))
        self._live += 1

    def remove(self, line: L) -> None:
        if line.qtoken:
            line.qtoken = 0
            self._live -= 1
            if not self._live:
                self._heap.clear()
            elif len(self._heap) > 4 * self._live + 1024:
                self._compact()

    def head(self) -> L:
        """The line served next (the queue must not be empty)."""
        heap = self._heap
        while heap[0][1] != heap[0][2].qtoken:
            heapq.heappop(heap)
        return heap[0][2]

    def __getitem__(self, index: int) -> L:
        if index != 0:
            raise IndexError("only the head ([0]) is addressable; iterate for the rest")
        if not self._live:
            raise IndexError("empty queue")
        return self.head()

    def lines(self) -> Iterator[L]:
        """Live lines in no particular order (cheap)."""
        return (e[2] for e in self._heap if e[1] == e[2].qtoken)

    def __iter__(self) -> Iterator[L]:
        """Live lines in service order."""
        return iter([e[2] for e in sorted(e for e in self._heap if e[1] == e[2].qtoken)])

    def first(self, n: int) -> list[L]:
        """The first ``n`` lines in service order."""
        return [e[2] for e in heapq.nsmallest(n, (e for e in self._heap if e[1] == e[2].qtoken))]

    def index(self, line: L) -> int:
        """0-based place of a queued line in service order."""
        if not line.qtoken:
            raise ValueError("line is not queued")
        key = (line.key, line.qtoken)
        return sum(1 for e in self._heap if e[1] == e[2].qtoken and (e[0], e[1]) < key)

    def rekey(self, keyfn: Callable[[L], tuple[Any, ...]]) -> None:
        """Re-sort after the service rule changed: every live line gets ``keyfn(line)``."""
        lines = list(self.lines())
        self._heap = []
        self._live = 0
        for line in lines:
            line.key = keyfn(line)
            self.add(line)

    def _compact(self) -> None:
        self._heap = [e for e in self._heap if e[1] == e[2].qtoken]
        heapq.heapify(self._heap)
