"""deadletters.retry of intake letters runs in a task of the connection: a failure there
costs that one request (an error reply), never the connection and the replies it is owed."""

from __future__ import annotations

from types import SimpleNamespace

import structlog
import trio
import trio.testing

from backorder import protocol as p
from backorder.errors import Conflict
from backorder.intake import ops


class Answers:
    """A Reply stand-in: records what the request was answered."""

    def __init__(self) -> None:
        self.got: list[tuple] = []

    def ok(self, result) -> None:
        self.got.append(("ok", result))

    def error(self, code: str, message: str) -> None:
        self.got.append(("error", code, message))


def context(retry_letters) -> SimpleNamespace:
    world = SimpleNamespace(dead_letters={7: SimpleNamespace(letter_id=7)})
    return SimpleNamespace(
        engine=SimpleNamespace(world=world, now=lambda: 0.0), intake=SimpleNamespace(retry_letters=retry_letters)
    )


async def retry_with(retry_letters) -> list[tuple]:
    answers = Answers()
    async with trio.open_nursery() as nursery:  # the connection's nursery: it must not fail
        conn = SimpleNamespace(nursery=nursery, id=1, actor="ada")
        ops.retry(context(retry_letters), conn, p.DeadLettersRetry(letter_id=7), answers, "c1.1")
        await trio.testing.wait_all_tasks_blocked()
    return answers.got


async def test_an_unexpected_failure_is_an_internal_error_reply_and_logged():
    async def broken(letters, corr, actor):
        raise KeyError("a bug")

    with structlog.testing.capture_logs() as logs:
        got = await retry_with(broken)
    assert got == [("error", "internal_error", "KeyError: 'a bug'")]
    assert [e["op"] for e in logs if e["event"] == "request_failed"] == ["deadletters.retry"]


async def test_a_refusal_is_answered_with_its_code():
    async def refused(letters, corr, actor):
        raise Conflict("request_closed", "closed meanwhile")

    assert await retry_with(refused) == [("error", "request_closed", "closed meanwhile")]


async def test_a_retry_that_works_is_answered_ok():
    async def works(letters, corr, actor):
        return {"retried": [x.letter_id for x in letters]}

    assert await retry_with(works) == [("ok", {"retried": [7]})]
