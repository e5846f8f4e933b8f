"""The ``oppsync`` command line.

Exit codes: 0 success; 1 the command ran but something was refused, timed
out or is missing; 2 it could not run at all (bad settings, Redis down).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import socket
import sys
import time
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO, TextIO

import redis

from worker.connections import connect_redis, redacted
from worker.csvrows import read_csv_rows
from worker.deadletter import DeadLetterStore, check_reason
from worker.errors import ConfigurationError, JobInvalid
from worker.job import Job, parse_job
from worker.ledger import STATES, Ledger
from worker.logs import configure_logging
from worker.mapping import JobMapping, map_records
from worker.producer import (
    EnqueueReport,
    Producer,
    Refusal,
    is_json_array,
    read_jobs,
)
from worker.settings import Settings

#: Seconds between polls of ``oppsync wait``.
WAIT_POLL_S = 0.5


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the process exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["simulate"]:  # its options belong to the simulator
        return run_simulator(argv[1:])
    args = build_parser().parse_args(argv)
    try:
        settings = Settings.from_env()
        configure_logging("WARNING", settings.log_format)
        code: int = args.handler(args, settings)
    except ConfigurationError as exc:
        return _fail(str(exc))
    except (redis.ConnectionError, redis.TimeoutError) as exc:
        return _fail(
            f"cannot reach Redis at {redacted(settings.redis_url)} ({exc}). "
            "Start Redis (for example `redis-server`) or point REDIS_URL at one."
        )
    except redis.RedisError as exc:
        return _fail(f"Redis at {redacted(settings.redis_url)} refused: {exc}")
    except OSError as exc:
        return _fail(f"cannot read {exc.filename or 'input'}: {exc.strerror or exc}")
    except UnicodeEncodeError:
        return _fail("arguments must be valid UTF-8 text")
    return code


def _fail(message: str) -> int:
    print(f"oppsync: {message}", file=sys.stderr)
    return 2


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser with every sub-command."""
    parser = argparse.ArgumentParser(
        prog="oppsync",
        description="Create Capsule CRM opportunities from queued jobs, exactly once.",
    )
    commands = parser.add_subparsers(required=True, metavar="COMMAND")

    enqueue = commands.add_parser("enqueue", help="validate and enqueue jobs")
    enqueue.add_argument(
        "file", nargs="?", default="-", help="JSON Lines, JSON array or CSV; - is stdin"
    )
    enqueue.add_argument(
        "--map",
        metavar="MAPPING",
        help="a mapping file (TOML) that turns each record into a job",
    )
    enqueue.add_argument(
        "--format",
        choices=["auto", "json", "csv"],
        default="auto",
        help="input format (auto: csv for *.csv, else json)",
    )
    enqueue.set_defaults(handler=cmd_enqueue)

    status = commands.add_parser("status", help="show one job's state")
    status.add_argument("key")
    status.add_argument("--json", action="store_true", help="print JSON")
    status.set_defaults(handler=cmd_status)

    wait = commands.add_parser("wait", help="block until every job is finished")
    wait.add_argument("--timeout", type=float, default=None, metavar="SECONDS")
    wait.set_defaults(handler=cmd_wait)

    simulate = commands.add_parser(
        "simulate",
        help="run the Capsule simulator (--help for its options)",
        add_help=False,
    )
    simulate.add_argument("options", nargs=argparse.REMAINDER)

    dead = commands.add_parser("dead", help="list, show, replay or purge dead jobs")
    dead_commands = dead.add_subparsers(required=True, metavar="ACTION")
    listing = dead_commands.add_parser("list", help="list dead jobs")
    listing.add_argument("--reason", help="only this reason (e.g. lookup)")
    listing.add_argument("--since", help="only dead since this ISO date or time (UTC)")
    listing.add_argument("--json", action="store_true", help="print JSON lines")
    listing.set_defaults(handler=cmd_dead_list)
    show = dead_commands.add_parser("show", help="show one dead job")
    show.add_argument("key")
    show.set_defaults(handler=cmd_dead_show)
    replay = dead_commands.add_parser("replay", help="try dead jobs again")
    replay.add_argument("keys", nargs="*", metavar="KEY")
    replay.add_argument("--reason", help="every dead job with this reason")
    replay.add_argument("--all", action="store_true", help="every dead job")
    replay.add_argument(
        "--with",
        dest="with_file",
        metavar="FILE",
        help="replace the job (one key) with this JSON job; - is stdin",
    )
    replay.set_defaults(handler=cmd_dead_replay)
    purge = dead_commands.add_parser("purge", help="forget every dead job for good")
    purge.add_argument("--yes", action="store_true", help="do not ask")
    purge.set_defaults(handler=cmd_dead_purge)

    serve = commands.add_parser("serve", help="serve HTTP ingest (POST /v1/jobs)")
    serve.add_argument("--host", help="address to bind (OPPSYNC_INGEST_HOST)")
    serve.add_argument("--port", type=int, help="port (OPPSYNC_INGEST_PORT)")
    serve.add_argument("--tls-cert", metavar="FILE", help="serve HTTPS: certificate")
    serve.add_argument("--tls-key", metavar="FILE", help="serve HTTPS: private key")
    serve.set_defaults(handler=cmd_serve)

    demo = commands.add_parser(
        "demo", help="run the whole pipeline on the bundled data"
    )
    demo.add_argument(
        "--limit", type=int, default=None, help="simulator requests per window"
    )
    demo.add_argument("--window-s", type=float, default=None, help="simulator window")
    demo.add_argument("--concurrency", type=int, default=None, help="worker processes")
    demo.add_argument("--timeout", type=float, default=1800.0, metavar="SECONDS")
    demo.set_defaults(handler=cmd_demo)
    return parser


def cmd_enqueue(args: argparse.Namespace, settings: Settings) -> int:
    """Enqueue jobs from a file or stdin; exit 1 when any was refused."""
    mapping = JobMapping.load(Path(args.map)) if args.map else None
    data = sys.stdin.buffer.read() if args.file == "-" else _read(args.file)
    client = connect_redis(settings.redis_url)
    client.ping()
    producer = Producer.for_settings(settings, Ledger(client, settings.key_prefix))

    report = producer.submit_all(_records(io.BytesIO(data), args, mapping))
    print_report(report, sys.stdout, _position_name(data, args))
    return 1 if report.refusals else 0


def _read(path: str) -> bytes:
    return Path(path).read_bytes()


def _position_name(data: bytes, args: argparse.Namespace) -> str:
    """Return what a refusal's position counts: array items or lines."""
    return "item" if is_json_array(data) and not _is_csv(args) else "line"


def _is_csv(args: argparse.Namespace) -> bool:
    return bool(
        args.format == "csv"
        or (args.format == "auto" and args.file.lower().endswith(".csv"))
    )


def _records(
    stream: BinaryIO, args: argparse.Namespace, mapping: JobMapping | None
) -> Iterator[tuple[int, Any]]:
    """Yield ``(position, job or Refusal)`` read from ``stream``: CSV rows
    or JSON values, turned into jobs by ``mapping`` when one is given."""
    is_csv = _is_csv(args)
    if is_csv and mapping is None:
        raise ConfigurationError("CSV input needs --map MAPPING to become jobs")
    items = read_csv_rows(stream) if is_csv else read_jobs(stream)
    return items if mapping is None else map_records(mapping, items)


def print_report(report: EnqueueReport, out: TextIO, position: str = "line") -> None:
    """Print each refusal (at its ``position``: line or item), then the
    summary line."""
    for refusal in report.refusals:
        where = f"{position} {refusal.position}"
        print(f"{where}: {refusal.field}: {refusal.message}", file=out)
    print(
        f"enqueued {report.enqueued}, duplicates {report.duplicates}, "
        f"refused {report.refused}",
        file=out,
    )


def cmd_status(args: argparse.Namespace, settings: Settings) -> int:
    """Print a job's state; exit 1 for an unknown key."""
    record = Ledger(connect_redis(settings.redis_url), settings.key_prefix).get(
        args.key
    )
    if record is None:
        print(f"oppsync: no job with key {args.key!r}", file=sys.stderr)
        return 1
    status = record.as_status()
    if args.json:
        print(json.dumps(status))
    else:
        for name, value in status.items():
            print(f"{name:14} {'' if value is None else value}")
    return 0


def cmd_wait(args: argparse.Namespace, settings: Settings) -> int:
    """Wait until no job is unfinished; exit 1 on timeout."""
    ledger = Ledger(connect_redis(settings.redis_url), settings.key_prefix)
    deadline = None if args.timeout is None else time.monotonic() + args.timeout
    while ledger.active_count() > 0:
        if deadline is not None and time.monotonic() > deadline:
            print_counts(ledger.state_counts(), sys.stdout)
            print(
                f"oppsync: {ledger.active_count()} jobs still unfinished",
                file=sys.stderr,
            )
            return 1
        time.sleep(WAIT_POLL_S)
    print_counts(ledger.state_counts(), sys.stdout)
    return 0


def print_counts(counts: dict[str, int], out: TextIO) -> None:
    """Print the number of jobs in each state, in pipeline order."""
    for state in STATES:
        print(f"{state:10} {counts.get(state, 0)}", file=out)


def _dead_store(settings: Settings) -> DeadLetterStore:
    ledger = Ledger(connect_redis(settings.redis_url), settings.key_prefix)
    producer = Producer.for_settings(settings, ledger)
    return DeadLetterStore(ledger, producer)


def cmd_dead_list(args: argparse.Namespace, settings: Settings) -> int:
    """List dead jobs: key, reason, time and message, or JSON lines."""
    check_reason(args.reason)
    since_ms = _parse_since(args.since) if args.since else None
    for letter in _dead_store(settings).letters(args.reason, since_ms):
        if args.json:
            print(json.dumps(letter.as_json()))
        else:
            when = time.strftime(
                "%Y-%m-%dT%H:%M:%SZ", time.gmtime(letter.dead_at_ms / 1000)
            )
            print(f"{letter.key}\t{letter.reason}\t{when}\t{letter.message}")
    return 0


def _parse_since(text: str) -> int:
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise ConfigurationError(
            f"--since: {text!r} is not an ISO date or time"
        ) from exc
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)


def cmd_dead_show(args: argparse.Namespace, settings: Settings) -> int:
    """Print one dead letter as JSON; exit 1 when the job is not dead."""
    letter = _dead_store(settings).show(args.key)
    if letter is None:
        print(f"oppsync: no dead job with key {args.key!r}", file=sys.stderr)
        return 1
    print(json.dumps(letter.as_json(), indent=2))
    return 0


#: What ``oppsync dead replay`` prints for each outcome.
_REPLAY_OUTCOMES = {
    "queued": "queued",
    "created": "created (sent to verification)",
    "not_dead": "not dead, nothing to do",
    "unknown": "no job with this key",
}


def cmd_dead_replay(args: argparse.Namespace, settings: Settings) -> int:
    """Replay dead jobs; exit 1 when one was refused, unknown or not dead."""
    check_reason(args.reason)
    if args.keys and (args.all or args.reason):
        print("oppsync: name keys, or --reason R, or --all; not both", file=sys.stderr)
        return 2
    if args.with_file and (args.all or args.reason or len(args.keys) != 1):
        print(
            "oppsync: --with replaces exactly one job, named by its key",
            file=sys.stderr,
        )
        return 2
    if not (args.keys or args.all or args.reason):
        print("oppsync: name keys, --reason R or --all", file=sys.stderr)
        return 2
    store = _dead_store(settings)
    keys = list(args.keys)
    if args.all or args.reason:
        keys += [x.key for x in store.letters(None if args.all else args.reason)]
    if not keys:
        print("no dead jobs to replay")
        return 0
    job = _corrected_job(args.with_file, keys[0]) if args.with_file else None
    if isinstance(job, int):
        return job

    failed = 0
    for key in keys:
        outcome = store.replay(key, job)
        failed += outcome in ("not_dead", "unknown")
        print(f"{key}: {_REPLAY_OUTCOMES[outcome]}")
    return 1 if failed else 0


def _corrected_job(path: str, key: str) -> Job | int:
    if path == "-":
        items = list(read_jobs(sys.stdin.buffer))
    else:
        with Path(path).open("rb") as handle:
            items = list(read_jobs(handle))
    if len(items) != 1:
        print("oppsync: --with takes exactly one job", file=sys.stderr)
        return 2
    data = items[0][1]
    if isinstance(data, Refusal) or not isinstance(data, dict):
        print("oppsync: --with: the job is not a JSON object", file=sys.stderr)
        return 1
    if data.setdefault("idempotencyKey", key) != key:
        print(f"oppsync: --with: the job's key must be {key!r}", file=sys.stderr)
        return 1
    try:
        return parse_job(data)
    except JobInvalid as exc:
        for field, message in exc.problems:
            print(f"{field}: {message}", file=sys.stderr)
        return 1


def cmd_dead_purge(args: argparse.Namespace, settings: Settings) -> int:
    """Forget every dead job, after confirmation (or ``--yes``)."""
    store = _dead_store(settings)
    keys = [x.key for x in store.letters()]
    if not args.yes:
        if not sys.stdin.isatty():
            print(
                "oppsync: purge needs --yes when not run at a terminal", file=sys.stderr
            )
            return 2
        answer = input(f"Forget {len(keys)} dead jobs for good? [y/N] ")
        if answer.strip().lower() not in {"y", "yes"}:
            print("nothing purged")
            return 1
    print(f"purged {store.purge(keys)} dead jobs")
    return 0


def run_simulator(argv: list[str]) -> int:
    """Serve the simulator until interrupted (bundled data set by default)."""
    from worker.dataset import DATA_DIR
    from worker.simulator.__main__ import main as simulator_main

    if not {"--seed", "--dataset", "-h", "--help"} & set(argv):
        argv = [*argv, "--dataset", str(DATA_DIR)]
    return simulator_main(argv)


def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    """Serve HTTP ingest under uvicorn until interrupted."""
    import uvicorn

    from worker.ingest import build_service, create_ingest_app

    settings.check_ingest()
    host = args.host or settings.ingest_host
    port = settings.ingest_port if args.port is None else args.port
    _check_tls_files(args.tls_cert, args.tls_key)
    _check_bindable(host, port)
    configure_logging(settings.log_level, settings.log_format)
    connect_redis(settings.redis_url).ping()  # fail now, not on a request
    app = create_ingest_app(settings, build_service(settings))
    uvicorn.run(
        app,
        host=host,
        port=port,
        ssl_certfile=args.tls_cert,
        ssl_keyfile=args.tls_key,
        log_config=None,
        server_header=False,
    )
    return 0


def _check_tls_files(cert: str | None, key: str | None) -> None:
    """Refuse half a TLS set-up or unreadable files, naming them."""
    if (cert is None) != (key is None):
        raise ConfigurationError("HTTPS needs both --tls-cert and --tls-key")
    for option, path in (("--tls-cert", cert), ("--tls-key", key)):
        if path is not None and not os.access(path, os.R_OK):
            raise ConfigurationError(f"{option}: cannot read {path!r}")


def _check_bindable(host: str, port: int) -> None:
    """Refuse a port that is out of range or taken, before serving."""
    if not 0 < port < 65536:
        raise ConfigurationError(f"port {port} is not between 1 and 65535")
    try:
        with socket.create_server((host, port)):
            pass
    except OSError as exc:
        raise ConfigurationError(
            f"cannot listen on {host}:{port}: {exc.strerror or exc}"
        ) from None


def cmd_demo(args: argparse.Namespace, settings: Settings) -> int:
    """Run the demo; see :mod:`worker.demo`."""
    from worker.demo import DemoOptions, run_demo

    options = DemoOptions(timeout_s=args.timeout)
    if args.limit is not None:
        options.limit = args.limit
    if args.window_s is not None:
        options.window_s = args.window_s
    if args.concurrency is not None:
        options.concurrency = args.concurrency
    return run_demo(settings, options, sys.stdout)


if __name__ == "__main__":
    sys.exit(main())
