"""`python -m pipeline.bench [--quick]` (what `ops/bench` runs): prints the table and a summary line."""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from pipeline.bench.report import render
from pipeline.bench.run import FULL, QUICK, run_bench, to_json
from pipeline.bench.scenario import Settings
from pipeline.bench.stack import BenchError
from pipeline.errors import MailpipeError

R = TypeVar("R")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="ops/bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="~30-second run: smaller N, no 100k backlog phase")
    parser.add_argument("--processes", type=int, default=Settings.processes, help="worker processes (default 2)")
    parser.add_argument("--threads", type=int, default=Settings.threads, help="threads per worker process (default 4)")
    parser.add_argument("--prefetch", type=int, default=Settings.prefetch, help="[broker] prefetch (default 64)")
    parser.add_argument("--pool-size", type=int, default=Settings.pool_size, help="SMTP sessions per account per process")
    parser.add_argument(
        "--redis-max-connections",
        type=int,
        default=Settings.redis_max_connections,
        help="state-store client pool cap per process (0: redis-py's default of 100)",
    )
    parser.add_argument(
        "--worker-env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="extra environment for the workers (repeatable), e.g. MAILPIPE_LOG_LEVEL=WARNING",
    )
    parser.add_argument("--profile", type=Path, metavar="DIR", help="attach py-spy to the workers and the submit command")
    parser.add_argument("--json", type=Path, metavar="FILE", help="also write the results as JSON")
    parser.add_argument("--keep", type=Path, metavar="DIR", help="work directory to keep (logs, config); default a temp dir")
    parser.add_argument(
        "--tenants",
        type=int,
        metavar="N",
        help="accounts from a private PostgreSQL: 1 tenant vs N tenants x 3 accounts, same run (with --quick: fewer events)",
    )
    parser.add_argument(
        "--distinct-logins",
        action="store_true",
        help="with --tenants: every account its own user name, so no two share an SMTP session (the worst case)",
    )
    parser.add_argument(
        "--archiver",
        action="store_true",
        help="a private PostgreSQL and `mailpipe archive`: bursts with and without the archiver, interleaved, and archive lag",
    )
    parser.add_argument("--max-cached", type=int, help="with --tenants: [tenants] max_cached (default: the config default)")
    parser.add_argument(
        "--max-sessions", type=int, help="with --tenants: [tenants] max_smtp_sessions (default: the config default)"
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    if "--control-plane" in (sys.argv[1:] if argv is None else argv):
        from pipeline.bench import control_plane

        return control_plane.main(sys.argv[1:] if argv is None else argv)
    if {"--retention", "--delivery-log"} & set(sys.argv[1:] if argv is None else argv):
        from pipeline.bench import retention

        return retention.main(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    env = {}
    for item in args.worker_env:
        name, sep, value = item.partition("=")
        if not sep or not name:
            print(f"--worker-env wants NAME=VALUE, got {item!r}", file=sys.stderr)
            return 2
        env[name] = value
    settings = Settings(
        processes=args.processes,
        threads=args.threads,
        prefetch=args.prefetch,
        pool_size=args.pool_size,
        redis_max_connections=args.redis_max_connections,
    )
    directory = args.keep or Path(tempfile.mkdtemp(prefix="mailpipe-bench-"))

    def say(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    if args.tenants is not None:
        from pipeline.bench import tenants

        if args.tenants < 1:
            print(f"--tenants wants a number of tenants >= 1, got {args.tenants}", file=sys.stderr)
            return 2
        return _report(
            args,
            directory,
            lambda: tenants.run_tenants(
                directory,
                tenants.TENANTS_QUICK if args.quick else tenants.TENANTS_FULL,
                args.tenants,
                mode="quick" if args.quick else "full",
                settings=settings,
                max_cached=args.max_cached,
                max_sessions=args.max_sessions,
                distinct_logins=args.distinct_logins,
                worker_env=env,
                profile_dir=args.profile,
                say=say,
            ),
            tenants.render_tenants,
            tenants.tenants_json,
        )
    if args.archiver:
        from pipeline.bench import archive_run

        return _report(
            args,
            directory,
            lambda: archive_run.run_archiver_bench(
                directory,
                archive_run.ARCHIVE_QUICK if args.quick else archive_run.ARCHIVE_FULL,
                mode="quick" if args.quick else "full",
                settings=settings,
                worker_env=env,
                say=say,
            ),
            archive_run.render_archive,
            archive_run.archive_json,
        )
    return _report(
        args,
        directory,
        lambda: run_bench(
            directory,
            QUICK if args.quick else FULL,
            mode="quick" if args.quick else "full",
            settings=settings,
            worker_env=env,
            profile_dir=args.profile,
            say=say,
        ),
        render,
        to_json,
    )


def _report(
    args: argparse.Namespace,
    directory: Path,
    run: Callable[[], R],
    render_text: Callable[[R], str],
    render_json: Callable[[R], str],
) -> int:
    """Run one kind of bench; print its table (and write --json); the work directory goes unless --keep."""
    try:
        results = run()
    except (BenchError, MailpipeError) as exc:
        print(f"bench failed: {exc} (work directory {directory})", file=sys.stderr)
        return 1
    finally:
        if args.keep is None:
            shutil.rmtree(directory, ignore_errors=True)
    if args.json:
        args.json.write_text(render_json(results), encoding="utf-8")
    print(render_text(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
