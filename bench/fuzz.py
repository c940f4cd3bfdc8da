"""The grammar fuzzer at scale: ``--messages`` (default 1,000,000) generated messages against
one daemon — control-socket lines pipelined over 4 connections (94 %), TCP connections with
a fuzzed auth line (3 %), webhook posts, signed and not (3 %) — then ``kill -9`` and a
restart that must replay the journal. The grammar and the checks are the test suite's
(tests/fuzz_grammar.py, tests/fuzz_support.py; tests/integration/test_fuzz.py runs them small).

Unlike the test, a finding does not stop the run: a daemon that exits is restarted (a start
that fails is an unreplayable journal, and the run goes on with a fresh one), so one bug does
not hide the next. Every finding is in the result with the payloads last sent.

Figures (bench/results/fuzz.json): messages, msgs/s, daemon exits (target 0), unreplayable
journals (target 0), reply codes, HTTP statuses, TCP outcomes, RSS at start / end / max.

RSS over the grammar's run is not a measure of a leak: every accepted order, receipt,
shipment and journal event is history the daemon keeps (``state_samples``), and the read
ops' replies grow with it (``audit.query`` returns up to 10,000 journal rows, several MB,
and 256 requests are in flight), so the high-water mark of transient buffers rises with the
journal. Hence a second phase, ``--flat-messages`` (default a fifth of ``--messages``), of
messages after which a correct daemon keeps nothing new (``creates_nothing``: read ops,
lines that do not decode, TCP sessions without a valid token, unsigned webhook posts, fresh
accounts included). Over it the held state is constant, so RSS may only move within the
high-water noise of the replies: the check is that the RSS high of its second half is at
most ``--rss-bound-mib`` (default 10 MiB) above the high of its first half. State kept per
hostile message (per connection, per unauthenticated account, per unknown op...) grows
linearly instead and fails it.

    python bench/fuzz.py [--messages 1000000] [--seed N] [--quick]
"""

from __future__ import annotations

import argparse
import os
import sys
import time

from common import ROOT, exit_on_sigterm, result_name, running, save

sys.path.insert(0, str(ROOT / "tests"))  # one copy of the grammar and the driver: the tests'

from fuzz_support import SECRET, SECRET_ENV, Fuzzer, Target, config, creates_nothing, free_port

FLAT_BOUND_MIB = 10.0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--messages", type=int, default=1_000_000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument(
        "--flat-messages",
        type=int,
        default=None,
        help="messages of the phase that must keep RSS flat (default: a fifth of --messages)",
    )
    ap.add_argument(
        "--rss-bound-mib",
        type=float,
        default=FLAT_BOUND_MIB,
        help="the most the RSS high of that phase's second half may exceed its first half's",
    )
    ap.add_argument("--quick", action="store_true", help="10x fewer messages, for a smoke test")
    args = ap.parse_args()
    exit_on_sigterm()
    messages = args.messages // 10 if args.quick else args.messages
    flat = args.flat_messages if args.flat_messages is not None else messages // 5
    os.environ[SECRET_ENV] = SECRET  # the channels' secret_env, inherited by the daemon
    port = free_port()
    with running(config(port), start=False) as d:
        fresh = [0]

        def new_journal() -> None:
            """After a journal that does not replay: go on with an empty one (it is counted)."""
            fresh[0] += 1
            d.db = d.dir / f"fresh{fresh[0]}.db"

        def log_tail() -> str:
            return (d.dir / "daemon.log").read_text(errors="replace")[-4000:]

        d.start()
        target = Target(
            socket=d.sock,
            tcp_port=port,
            proc=lambda: d.proc,
            start=lambda: d.start(timeout=600),
            kill9=d.kill9,
            log_tail=log_tail,
        )
        fuzz = Fuzzer(target, args.seed, stop_on_finding=False, on_exit_restart=new_journal)
        fuzz.setup()
        t0 = time.perf_counter()

        def progress(sent: int) -> None:
            rate = sent / (time.perf_counter() - t0)
            print(
                f"  {sent:,} messages, {rate:,.0f}/s, RSS {fuzz.rss[-1][1]:.1f} MiB, "
                f"{fuzz.daemon_exits} exits, {len(fuzz.findings)} findings",
                flush=True,
            )

        fuzz.run(messages, progress=progress, rss_samples=20)
        grammar_phase = (fuzz.rss[0][1], fuzz.rss[-1][1], fuzz.kept[-1][1] if fuzz.kept else {})
        first_flat = len(fuzz.rss)
        print(f"  then {flat:,} messages that leave nothing to keep (RSS must stay flat)", flush=True)
        fuzz.run(flat, progress=progress, rss_samples=10, keep=creates_nothing)
        flat_rss = [m for _, m in fuzz.rss[first_flat:]]
        fuzz.finish()
        report = fuzz.report()
    start, end, held = grammar_phase
    report["grammar_phase"] = {
        "messages": messages,
        "rss_start_mib": round(start, 1),
        "rss_end_mib": round(end, 1),
        "held_at_end": held,
    }
    half = len(flat_rss) // 2
    late = max(flat_rss[half:]) - max(flat_rss[:half])
    report["flat_phase"] = {
        "messages": flat,
        "rss_start_mib": round(flat_rss[0], 1),
        "rss_end_mib": round(flat_rss[-1], 1),
        "rss_max_mib": round(max(flat_rss), 1),
        "rss_growth_mib": round(flat_rss[-1] - flat_rss[0], 1),
        "rss_second_half_high_over_first_mib": round(late, 1),
    }
    report["rss_bound_mib"] = args.rss_bound_mib
    report["rss_within_bound"] = late < args.rss_bound_mib
    report["errors"] = len(report["findings"])  # run_all.py marks the figures with it
    save(result_name("fuzz", args.quick), report)
    bad = (
        report["daemon_exits"]
        or report["unreplayable_journals"]
        or not report["rss_within_bound"]
        or report["findings"]
    )
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
