"""``backorder`` command line: serve, send, check-config, journal, demo, tui."""

from __future__ import annotations

import argparse
import socket
import sys

from backorder.config.settings import ConfigError, load_settings

# Exit statuses systemd is told not to restart on (RestartPreventExitStatus): restarting
# cannot fix a bad config file or a damaged journal (sysexits.h EX_CONFIG, EX_DATAERR).
EXIT_CONFIG = 78
EXIT_DATA = 65
# A client command that cannot reach the daemon (argparse's usage errors exit 2 as well:
# in both cases the command line must change, not the daemon).
EXIT_NO_DAEMON = 2


class NoDaemon(Exception):
    """A client command could not reach a daemon on its socket; the message says why and
    what to do."""


def _unreachable(path: str, exc: OSError) -> NoDaemon:
    if isinstance(exc, FileNotFoundError):
        why = "not found"
    elif isinstance(exc, ConnectionRefusedError):
        why = "nothing listens on it: the daemon has stopped and left its socket file"
    elif isinstance(exc, PermissionError):
        return NoDaemon(
            f"cannot connect to {path} (permission denied): ask to be added to the socket's "
            "group ([access] group in the daemon's config)"
        )
    elif isinstance(exc, ConnectionError):
        return NoDaemon(f"the daemon at {path} closed the connection ({exc.strerror or exc})")
    else:
        why = exc.strerror or str(exc)
    return NoDaemon(f"no daemon at {path} ({why}): start it with `backorder serve`, or pass --socket PATH")


def _refuse_config(exc: ConfigError):
    """One problem per line, each with its key path (check-config and serve print the same)."""
    print("backorder: invalid configuration:\n" + "\n".join(str(exc).split("; ")), file=sys.stderr)
    sys.exit(EXIT_CONFIG)


def _settings(args):
    try:
        settings = load_settings(args.config)
    except ConfigError as exc:
        # one problem per line, each with its key path (the same lines as check-config)
        _refuse_config(exc)
    d = settings.daemon
    if getattr(args, "db", None):
        d.db = args.db
    if getattr(args, "socket", None):
        d.socket = args.socket
    return settings


def cmd_serve(args) -> None:
    import structlog

    from backorder.config import service_checks
    from backorder.daemon import app, dblock, logging, recovery, server

    settings = _settings(args)
    logging.configure(settings.daemon.log_level)
    missing = service_checks.environment_problems(settings)
    if missing:
        _refuse_config(ConfigError("; ".join(missing)))
    for warning in service_checks.exposure_warnings(settings):
        structlog.get_logger().warning("listener_exposed", detail=warning)
    try:
        app.run(settings, args.config)
    except recovery.REFUSALS as exc:  # a damaged journal, an event that does not replay
        print(f"backorder: {exc}", file=sys.stderr)
        sys.exit(EXIT_DATA)
    except (dblock.Locked, server.SocketInUse) as exc:  # another daemon has the journal or the socket
        sys.exit(f"backorder: {exc}")


def cmd_send(args) -> None:
    """Send request lines (arguments, or stdin) and print each reply line."""
    lines = args.request or [line for line in sys.stdin.read().splitlines() if line.strip()]
    try:
        _send(args, lines)
    except OSError as exc:
        raise _unreachable(args.socket, exc) from None


def _send(args, lines: list[str]) -> None:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.connect(args.socket)
        f = sock.makefile("rwb")
        for line in lines:
            f.write(line.encode() + b"\n")
        f.flush()
        for _ in lines:
            reply = f.readline()
            if not reply:
                sys.exit("backorder: the daemon closed the connection")
            sys.stdout.write(reply.decode())
        if args.follow:
            for reply in f:
                sys.stdout.write(reply.decode())
                sys.stdout.flush()


def cmd_check_config(args) -> None:
    from backorder.config import service_checks

    try:
        settings = load_settings(args.file)
    except ConfigError as exc:
        _refuse_config(exc)
    warnings = service_checks.exposure_warnings(settings)
    for warning in warnings:
        print(f"backorder: warning: {warning}", file=sys.stderr)
    print(f"{args.file}: ok" + (f" ({len(warnings)} warning(s))" if warnings else ""))


def cmd_token(args) -> None:
    """Make a bearer token for a TCP client: the token for the client, the hash for the config."""
    from backorder.daemon.tcp import hash_token, new_token

    token = new_token()
    print(f"token (give it to the client; it is not stored anywhere): {token}")
    print("config lines (add them to the daemon's config, then `systemctl reload backorderd`):")
    print(f"[tcp.clients.{args.name}]")
    print(f'token_sha256 = "{hash_token(token)}"')
    print(f'role = "{args.role}"')


def _db_path(args) -> str:
    """--db, else [daemon] db of --config, else the default."""
    if args.db:
        return args.db
    return _settings(args).daemon.db


def cmd_backup(args) -> None:
    from backorder.daemon import backup

    try:
        backup.backup(_db_path(args), args.dest)
    except backup.BackupError as exc:
        sys.exit(f"backorder: {exc}")


def cmd_restore(args) -> None:
    from backorder.daemon import backup

    try:
        backup.restore(args.src, _db_path(args))
    except backup.BackupError as exc:
        sys.exit(f"backorder: {exc}")


def cmd_export(args) -> None:
    from backorder.daemon import backup

    settings = _settings(args) if args.config else None
    try:
        if args.out:
            from backorder.daemon import files

            backup.check_export_target(args.out, _db_path(args))
            # 0600 whatever the umask: an export holds customers' names and addresses
            with open(files.open_private(args.out), "w", encoding="utf-8", newline="") as out:
                n = backup.export(_db_path(args), args.what, args.format, out, settings)
            print(f"exported {n} {args.what} records to {args.out}", file=sys.stderr)
        else:
            backup.export(_db_path(args), args.what, args.format, sys.stdout, settings)
    except backup.BackupError as exc:
        sys.exit(f"backorder: {exc}")


def cmd_journal(args) -> None:
    """``journal check``: list the events a start-up could not replay (exit 65 if any).
    ``journal quarantine SEQ``: set one aside, journaled, so that replay skips it."""
    from backorder.daemon import repair

    db = _db_path(args)
    settings = _settings(args) if args.config else None
    try:
        if args.action == "check":
            problems, scanned, skip = repair.check(db, settings)
            for p in problems:
                print(f"{p.seq}\t{p.event_type}\t{p.stage}\t{p.error}")
            print(
                f"{db}: {scanned} events, {len(problems)} cannot be replayed, {len(skip)} quarantined"
                + (f" ({', '.join(map(str, sorted(skip)))})" if skip else ""),
                file=sys.stderr,
            )
            if problems:
                print(f'set an event aside: backorder journal quarantine SEQ --db {db} --reason "..."', file=sys.stderr)
                sys.exit(EXIT_DATA)
        else:
            new_seq = repair.quarantine(db, args.seq, args.reason, force=args.force, settings=settings)
            print(f"event {args.seq} quarantined (journal_quarantined event {new_seq}); replay skips it")
    except repair.RepairError as exc:
        sys.exit(f"backorder: {exc}")


def cmd_demo(args) -> None:
    from backorder import demo

    demo.main(args)


def cmd_tui(args) -> None:
    from backorder.tui import app

    app.run(args.socket, args.log)


def cmd_lab(args) -> None:
    """The policy lab (docs/lab.md): simulated sites replayed through real daemons."""
    from pathlib import Path

    from backorder.lab.generator import ScenarioSpec
    from backorder.lab.run import run_lab

    if args.scenario == "flash-sale":
        _lab_flash_sale(args)
        return
    spec = ScenarioSpec(skus=args.skus, days=args.days, warmup_days=args.warmup, scenario=args.scenario)
    out = Path(args.out)
    try:
        run_lab(
            spec,
            args.policies.split(","),
            list(range(1, args.seeds + 1)),
            out,
            keep=args.keep,
            keep_journals=args.keep_journals,
            notices=args.notices,
            by_group=args.by_group,
            resume=args.resume,
            jobs=args.jobs,
        )
    except ValueError as exc:
        sys.exit(f"backorder: {exc}")
    print((out / "report.md").read_text())
    print(f"report: {out / 'report.json'} and {out / 'report.md'}")


def _lab_flash_sale(args) -> None:
    """The lab's flash-sale scenario (its own driver: the other sites have no pick capacity)."""
    from pathlib import Path

    from backorder.lab.flash_sale import FlashSpec, run_flash_sale

    spec = FlashSpec(
        hours=args.hours,
        burst=args.burst,
        pick_rate=args.pick_rate,
        p95_bound_hours=args.p95_bound_hours,
        kill_at_hour=args.kill_at_hour,
    )
    out = Path(args.out)
    run_flash_sale(spec, list(range(1, args.seeds + 1)), out, keep_journals=args.keep_journals)
    print((out / "report.md").read_text())
    print(f"report: {out / 'report.json'} and {out / 'report.md'}")


def cmd_import(args) -> None:
    """A batch file through order.ingest, with a progress bar and a summary."""
    from rich.console import Console
    from rich.progress import Progress
    from rich.table import Table

    from backorder.intake import importer

    headers = dict(h.split(":", 1) for h in args.header or [])
    with open(args.file, "rb") as f:
        deliveries = importer.split(args.channel, f.read(), args.file)
    console = Console(stderr=True)
    with Progress(console=console, transient=False) as bar:
        task = bar.add_task(f"importing {args.file}", total=len(deliveries))
        try:
            summary = importer.run(
                args.socket,
                args.file,
                args.channel,
                args.account,
                headers,
                progress=lambda n: bar.advance(task, n),
                deliveries=deliveries,
            )
        except OSError as exc:
            raise _unreachable(args.socket, exc) from None
        except importer.ImportRefused as exc:
            sys.exit(f"backorder import: {exc}")
    table = Table(
        title=f"{summary['file']} ({summary['channel']}): {summary['deliveries']} deliveries, "
        f"{summary['orders']} orders"
    )
    table.add_column("outcome")
    table.add_column("orders", justify="right")
    for outcome in ("accepted", "duplicate", "updated", "rejected", "ignored"):
        table.add_row(outcome, str(summary["outcomes"].get(outcome, 0)))
    for code, n in sorted(summary["codes"].items()):
        table.add_row(f"  {code}", str(n))
    Console().print(table)
    if summary["dead_letters"]:
        Console().print(
            f"dead letters: {', '.join(map(str, summary['dead_letters']))} "
            "(see deadletters.list; fix, then deadletters.retry)"
        )
    if args.json:
        import json

        print(json.dumps(summary))


def _at_least(least: int):
    """An argparse type: a whole number no smaller than ``least`` (a lab of 0 seeds or
    0 jobs is a typo: said at once, not as an empty report or a pool's ValueError)."""

    def parse(text: str) -> int:
        try:
            n = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
        if n < least:
            raise argparse.ArgumentTypeError(f"must be at least {least}, not {n}")
        return n

    return parse


def main(argv: list[str] | None = None) -> None:
    from backorder import demo_scenarios  # the demo's story names (a light module)

    parser = argparse.ArgumentParser(prog="backorder", description="Backorder fulfillment daemon")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the daemon")
    serve.add_argument("--config", help="TOML settings file (see config/backorder.example.toml)")
    serve.add_argument("--db", help="SQLite journal file (default ./backorder.db)")
    serve.add_argument("--socket", help="Unix socket path (default ./backorder.sock)")
    serve.set_defaults(func=cmd_serve)

    send = sub.add_parser("send", help="send JSON request lines to a running daemon and print the replies")
    send.add_argument("request", nargs="*", help='e.g. \'{"op":"stats","id":1}\' (default: lines from stdin)')
    send.add_argument("--socket", default="backorder.sock")
    send.add_argument("--follow", action="store_true", help="keep printing lines (after a subscribe)")
    send.set_defaults(func=cmd_send)

    check = sub.add_parser("check-config", help="validate a settings file")
    check.add_argument("file")
    check.set_defaults(func=cmd_check_config)

    token = sub.add_parser("token", help="make a bearer token for a TCP client and print its config lines")
    token.add_argument("name", help="the client's name (a TOML bare key: letters, digits, - and _)")
    token.add_argument("--role", choices=["read", "write"], default="write")
    token.set_defaults(func=cmd_token)

    for name, func, text in (
        ("backup", cmd_backup, "copy the live journal database (online, consistent)"),
        ("restore", cmd_restore, "replace the journal database by a backup (daemon stopped)"),
        ("export", cmd_export, "export orders or the audit trail as JSON lines or CSV"),
    ):
        cmd = sub.add_parser(name, help=text)
        if name == "backup":
            cmd.add_argument("dest", help="backup file to create, or a directory for a dated file")
        elif name == "restore":
            cmd.add_argument("src", help="a file made by `backorder backup`")
        else:
            cmd.add_argument("what", choices=["orders", "audit"])
            cmd.add_argument("--format", choices=["jsonl", "csv"], default="jsonl")
            cmd.add_argument("--out", help="file to write (default: standard output)")
        cmd.add_argument("--config", help="TOML settings file: its [daemon] db is the database")
        cmd.add_argument("--db", help="the journal database (overrides --config)")
        cmd.set_defaults(func=func)

    journal = sub.add_parser("journal", help="find and set aside journal events that cannot be replayed")
    jsub = journal.add_subparsers(dest="action", required=True)
    jcheck = jsub.add_parser("check", help="replay the journal offline and list the events that fail")
    jquar = jsub.add_parser(
        "quarantine", help="set an event aside: kept, journaled, skipped by replay (daemon stopped)"
    )
    jquar.add_argument("seq", type=int, help="the event's sequence number (from the start-up error or check)")
    jquar.add_argument("--reason", required=True, help="why; journaled with the decision")
    jquar.add_argument("--force", action="store_true", help="also an event that replays (its effect is lost)")
    for cmd in (jcheck, jquar):
        cmd.add_argument("--config", help="TOML settings file: its [daemon] db is the database")
        cmd.add_argument("--db", help="the journal database (overrides --config)")
    journal.set_defaults(func=cmd_journal)

    demo = sub.add_parser("demo", help="run a simulated site and watch it in the console")
    demo.add_argument("--duration", type=float, default=0, help="seconds to run (0 = until Ctrl-C)")
    demo.add_argument("--skus", type=_at_least(1), default=200)
    demo.add_argument("--speed", type=float, default=3600.0, help="simulated seconds per real second")
    demo.add_argument("--keep", action="store_true", help="keep the temporary folder")
    demo.add_argument("--plain", action="store_true", help="summary lines instead of the console")
    demo.add_argument(
        "--scenario",
        default=demo_scenarios.DEFAULT,
        choices=tuple(demo_scenarios.SCENARIOS),
        help="the story the site plays (README: What the demo shows)",
    )
    demo.add_argument(
        "--history", type=_at_least(0), default=10, help="simulated days played before the demo opens (0 = none)"
    )
    demo.set_defaults(func=cmd_demo)

    tui = sub.add_parser("tui", help="the supervisor console (attach to a running daemon)")
    tui.add_argument("--socket", default="backorder.sock", help="the daemon's Unix socket")
    tui.add_argument("--log", help="the console's own log file (default: no log)")
    tui.set_defaults(func=cmd_tui)

    lab = sub.add_parser("lab", help="compare reorder policies on a simulated site, through real daemons")
    lab.add_argument("--skus", type=_at_least(1), default=200)
    lab.add_argument("--days", type=_at_least(1), default=90, help="measured days (after the warm-up)")
    lab.add_argument("--warmup", type=_at_least(0), default=28, help="warm-up days, replayed but not measured")
    lab.add_argument("--seeds", type=_at_least(1), default=1, help="paired seeds 1..K (every policy sees each site)")
    lab.add_argument(
        "--scenario",
        choices=["mixed", "control", "flash-sale"],
        default="mixed",
        help="flash-sale: a spike beyond pick capacity with the 3PL on (and off), kill -9 in the middle",
    )
    lab.add_argument(
        "--policies",
        default="static,planner-fifo,planner-priority",
        help="comma-separated: static (the sweep of safety days), static-N, planner-fifo, planner-priority",
    )
    lab.add_argument("--out", default="lab-out", help="folder for report.json and report.md")
    lab.add_argument("--keep", action="store_true", help="leave the last run's daemon running (for the console)")
    lab.add_argument("--keep-journals", action="store_true", help="keep every run's journal under OUT/runs")
    lab.add_argument(
        "--jobs", type=_at_least(1), default=1, help="runs at once, each in a process of its own (not with --keep)"
    )
    lab.add_argument(
        "--resume",
        action="store_true",
        help="reuse the runs OUT/done holds that this code made on the same site (a long lab goes on where it stopped)",
    )
    lab.add_argument(
        "--notices", action="store_true", help="journal customer notices (to measure late_lines_told_in_time)"
    )
    lab.add_argument(
        "--by-group",
        action="store_true",
        help="split each seed's figures by demand pattern, supplier pace and quoted lead time",
    )
    sale = lab.add_argument_group("flash-sale scenario (docs/lab.md)")
    sale.add_argument("--hours", type=_at_least(1), default=24, help="hours of demand")
    sale.add_argument("--burst", type=_at_least(1), default=400, help="orders of the sale")
    sale.add_argument("--pick-rate", type=_at_least(1), default=60, help="units the site picks an hour")
    sale.add_argument("--p95-bound-hours", type=float, default=4.0, help="the bound on order -> ship p95")
    sale.add_argument("--kill-at-hour", type=float, default=3.0, help="kill -9 the daemon at this engine hour")
    lab.set_defaults(func=cmd_lab)

    imp = sub.add_parser("import", help="send a batch file of orders through the governed intake")
    imp.add_argument("file")
    imp.add_argument(
        "--channel",
        required=True,
        choices=["csv", "x12_850", "x12_855", "x12_856", "amazon_sp", "bigcommerce", "shopify", "woocommerce"],
    )
    imp.add_argument("--account", help="the account (default: from the payload, else 'default')")
    imp.add_argument("--header", action="append", help="a header sent with every delivery, NAME:VALUE")
    imp.add_argument("--socket", default="backorder.sock")
    imp.add_argument("--json", action="store_true", help="also print the summary as one JSON line")
    imp.set_defaults(func=cmd_import)

    args = parser.parse_args(argv)
    try:
        args.func(args)
    except NoDaemon as exc:
        print(f"backorder: {exc}", file=sys.stderr)
        sys.exit(EXIT_NO_DAEMON)


if __name__ == "__main__":
    main()
