"""Amazon's cancellation feed: the feed a notice was taken as is kept in the model until the
notice is delivered (``notice_feed``), across a snapshot; reading the processing report
(``writeback.amazon_sp.report_errors``): only the errors for our message (or the whole
feed, MessageID 0) count; warnings and other messages' errors do not; a report that is
not one is an error of its own."""

from __future__ import annotations

from backorder.actors import events as ev
from backorder.actors.model import World
from backorder.actors.snapshot import dump, restore
from backorder.config.settings import Settings
from backorder.writeback.amazon_sp import message_id, report_errors


def test_a_notices_feed_is_kept_until_it_is_delivered_and_a_refusal_forgets_it():
    w = World(Settings())
    for nid in ("N0000001", "N0000002"):
        w.evolve(
            ev.NoticeQueued(
                ts=1.0, notice_id=nid, kind="fulfillment_cancel", email="", subject="", body="",
                channel="amazon_sp/main", audience="channel", data={"external_id": "111"},
            )
        )  # fmt: skip
        w.evolve(ev.NoticeFeed(ts=2.0, notice_id=nid, feed_id=f"F{nid[-1]}", state="submitted"))
    assert w.notice_feeds == {"N0000001": "F1", "N0000002": "F2"}
    assert restore(Settings(), dump(w)).notice_feeds == w.notice_feeds  # a restart reads the same feeds
    w.evolve(ev.NoticeFeed(ts=3.0, notice_id="N0000001", feed_id="F1", state="refused"))
    w.evolve(ev.NoticeDelivered(ts=3.0, notice_id="N0000002", attempt=2, response="feed F2 DONE"))
    assert w.notice_feeds == {}


def report(*results: tuple[int, str, str, str], with_error: int | None = None) -> bytes:
    body = "".join(
        f"<Result><MessageID>{m}</MessageID><ResultCode>{code}</ResultCode>"
        f"<ResultMessageCode>{num}</ResultMessageCode><ResultDescription>{text}</ResultDescription></Result>"
        for m, code, num, text in results
    )
    errors = with_error if with_error is not None else sum(1 for r in results if r[1] == "Error")
    return (
        "<AmazonEnvelope><Header><DocumentVersion>1.02</DocumentVersion></Header>"
        "<MessageType>ProcessingReport</MessageType><Message><MessageID>1</MessageID><ProcessingReport>"
        "<StatusCode>Complete</StatusCode><ProcessingSummary><MessagesProcessed>1</MessagesProcessed>"
        f"<MessagesWithError>{errors}</MessagesWithError></ProcessingSummary>{body}"
        "</ProcessingReport></Message></AmazonEnvelope>"
    ).encode()


def test_our_message_id_is_the_number_of_our_notice_id():
    assert message_id("N0000042") == 42
    assert message_id("N0000000") == 1  # a positive integer, always


def test_only_errors_for_our_message_or_the_whole_feed_count():
    assert report_errors(report(), 42) == []
    assert report_errors(report((42, "Warning", "5001", "minor")), 42) == []
    assert report_errors(report((7, "Error", "18028", "not ours")), 42) == []
    assert report_errors(report((42, "Error", "18028", "The order id 111-3 was not found.")), 42) == [
        "18028: The order id 111-3 was not found."
    ]
    assert report_errors(report((0, "Error", "5000", "XML Parsing Fatal Error")), 42) == [
        "5000: XML Parsing Fatal Error"
    ]


def test_a_report_that_is_not_one_is_an_error():
    assert report_errors(b"not xml", 1)[0].startswith("the processing report is not XML")
    assert report_errors(b"<AmazonEnvelope/>", 1) == ["the report has no ProcessingReport"]
    assert report_errors(report(with_error=1), 1) == ["MessagesWithError without a Result for our message"]
