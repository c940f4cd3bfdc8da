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
RSS growth over the run must stay under ``--rss-bound-mib`` (default 100 MiB). The grammar
draws external ids, SKUs and accounts from finite pools, so the state a correct daemon keeps
stops growing early: with the socket alone, 100,000 messages left ~1,600 orders, ~40 SKUs
and a few dozen dead letters, and RSS levelled off ~50 MiB above its start (46 -> 95 MiB).
The bound is twice that plateau: memory growing past it is held for input the daemon
should have forgotten (per-connection or per-unauthenticated-account state, say).
``state_samples`` show orders, SKUs and dead letters next to ``rss_samples``.

    python bench/fuzz.py [--messages 1000000] [--seed N] [--quick]
"""

from __future__ import annotations

import argparse
import os
import sys
import time

from common import ROOT, exit_on_sigterm, result_name, running, save

sys.path.insert(0, str(ROOT / "tests"))  # one copy of the grammar and the driver: the tests'

from fuzz_support import SECRET, SECRET_ENV, Fuzzer, Target, config, free_port

RSS_BOUND_MIB = 100.0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--messages", type=int, default=1_000_000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--rss-bound-mib", type=float, default=RSS_BOUND_MIB)
    ap.add_argument("--quick", action="store_true", help="10x fewer messages, for a smoke test")
    args = ap.parse_args()
    exit_on_sigterm()
    messages = args.messages // 10 if args.quick else args.messages
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
        target = Target(socket=d.sock, tcp_port=port, proc=lambda: d.proc, start=lambda: d.start(timeout=600),
                        kill9=d.kill9, log_tail=log_tail)
        fuzz = Fuzzer(target, args.seed, stop_on_finding=False, on_exit_restart=new_journal)
        fuzz.setup()
        t0 = time.perf_counter()

        def progress(sent: int) -> None:
            rate = sent / (time.perf_counter() - t0)
            print(f"  {sent:,} messages, {rate:,.0f}/s, RSS {fuzz.rss[-1][1]:.1f} MiB, "
                  f"{fuzz.daemon_exits} exits, {len(fuzz.findings)} findings", flush=True)

        fuzz.run(messages, progress=progress, rss_samples=20)
        fuzz.finish()
        report = fuzz.report()
    report["rss_bound_mib"] = args.rss_bound_mib
    report["rss_within_bound"] = report["rss_growth_mib"] is not None and report["rss_growth_mib"] < args.rss_bound_mib
    report["errors"] = len(report["findings"])  # run_all.py marks the figures with it
    save(result_name("fuzz", args.quick), report)
    bad = report["daemon_exits"] or report["unreplayable_journals"] or not report["rss_within_bound"] \
        or report["findings"]
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
