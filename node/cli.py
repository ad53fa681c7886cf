"""``sharpray``: the command line.

    sharpray serve [--role ROLE ...]     run the node (DIMSE SCP, HTTP, workers, dispatchers)
    sharpray process FILE --out DIR      run the pipeline on one file, offline
    sharpray db upgrade                  apply database migrations
    sharpray jobs [--state S] [--failed] list jobs
    sharpray retry ID ... | --failed     queue failed jobs again
    sharpray cancel ID ...               cancel queued or failed jobs
    sharpray echo DESTINATION            C-ECHO a configured destination
    sharpray config                      print the effective configuration

Every command takes ``--config FILE`` (default: $SHARPRAY_CONFIG, else ./config.yaml if present).
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import threading
from pathlib import Path

import yaml
from sqlalchemy import select

from node import __version__
from node.config import ConfigError, Settings, load_settings

log = logging.getLogger("sharpray")


def _settings(args: argparse.Namespace) -> Settings:
    path: Path | None = args.config
    if path is None and Path("config.yaml").is_file():
        path = Path("config.yaml")
    return load_settings(path)


def _setup_logging(settings: Settings | None, verbose: bool = False) -> None:
    from node.logs import setup_logging

    setup_logging("DEBUG" if verbose else (settings.logging.level if settings else "INFO"))


def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    from node.app import ROLES, Node

    roles = args.role or ["all"]
    node = Node(settings, ROLES if "all" in roles else roles)
    stop = threading.Event()

    def _stop(signum: int, _frame: object) -> None:
        log.info("signal %d received", signum)
        stop.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    node.start()
    stop.wait()
    node.stop()
    return 0


def cmd_process(args: argparse.Namespace, settings: Settings) -> int:
    from node.app import load_models
    from node.pipeline.analyse import analyse
    from node.pipeline.outputs import build_results
    from node.pipeline.preprocess import read_dataset
    from node.pipeline.results.inputs import Producer
    from node.pipeline.worker import encode

    models = load_models(settings)
    ds = read_dataset(Path(args.file))
    analysis = analyse(ds, models)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    producer = Producer(manufacturer=settings.results.manufacturer, software_version=__version__)
    written = []
    for kind, result in build_results(analysis, settings.results, producer):
        path = out / f"{kind}-{result.SOPInstanceUID}.dcm"
        path.write_bytes(encode(result))
        written.append(str(path))
    summary = {
        "findings": {f.label: round(f.probability, 4) for f in analysis.findings},
        "sharpness_before": analysis.sharpness_before,
        "sharpness_after": analysis.sharpness_after,
        "written": written,
    }
    print(json.dumps(summary, indent=2))
    return 0


def cmd_db(args: argparse.Namespace, settings: Settings) -> int:
    from storage import db

    engine = db.make_engine(settings.storage.database_url)
    db.upgrade(engine)
    print(f"database at revision {db.current_revision(engine)}")
    return 0


def _sessions(settings: Settings):  # type: ignore[no-untyped-def]
    from storage import db

    engine = db.make_engine(settings.storage.database_url)
    db.upgrade(engine)
    return db.make_sessionmaker(engine)


def cmd_jobs(args: argparse.Namespace, settings: Settings) -> int:
    from storage.tables import Instance, Job

    sessions = _sessions(settings)
    with sessions() as s:
        q = select(Job, Instance.sop_instance_uid).join(Instance, Instance.id == Job.instance_id)
        state = "failed" if args.failed else args.state
        if state:
            q = q.where(Job.state == state)
        if args.kind:
            q = q.where(Job.kind == args.kind)
        q = q.order_by(Job.id.desc()).limit(args.limit)
        rows = s.execute(q).all()
    print(f"{'ID':>6} {'KIND':9} {'STATE':10} {'TRY':>3} {'DEST':10} {'INSTANCE':40} ERROR")
    for job, uid in reversed(rows):
        print(
            f"{job.id:>6} {job.kind:9} {job.state:10} {job.attempts:>3} "
            f"{(job.destination or '-'):10} {uid:40} {(job.last_error or '')[:120]}"
        )
    return 0


def cmd_retry(args: argparse.Namespace, settings: Settings) -> int:
    from storage import queue

    if not args.ids and not args.failed:
        print("give job IDs or --failed", file=sys.stderr)
        return 2
    sessions = _sessions(settings)
    with sessions.begin() as s:
        n = queue.retry(s, None if args.failed else args.ids)
    print(f"{n} job(s) queued again")
    return 0


def cmd_cancel(args: argparse.Namespace, settings: Settings) -> int:
    from storage import queue

    sessions = _sessions(settings)
    with sessions.begin() as s:
        n = queue.cancel(s, args.ids)
    print(f"{n} job(s) cancelled")
    return 0


def cmd_echo(args: argparse.Namespace, settings: Settings) -> int:
    from node.dispatch import dimse
    from node.dispatch.errors import DeliveryError

    dest = settings.destinations.get(args.destination)
    if dest is None:
        print(f"no destination {args.destination!r} in the configuration", file=sys.stderr)
        return 2
    try:
        dimse.echo(dest, settings.node.ae_title, settings.dispatch.timeout_s)
    except DeliveryError as e:
        print(f"C-ECHO failed: {e}", file=sys.stderr)
        return 1
    print(f"C-ECHO to {args.destination} ({dest.ae_title}@{dest.host}:{dest.port}) succeeded")
    return 0


def cmd_config(args: argparse.Namespace, settings: Settings) -> int:
    print(yaml.safe_dump(settings.model_dump(mode="json"), sort_keys=False))
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="sharpray", description="SharpRay DICOM node")
    p.add_argument("--version", action="version", version=f"sharpray {__version__}")
    p.add_argument("--config", type=Path, default=None, help="configuration file (YAML)")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = p.add_subparsers(dest="command", required=True)

    sp = sub.add_parser("serve", help="run the node")
    sp.add_argument(
        "--role",
        action="append",
        choices=["all", "receiver", "worker", "dispatcher"],
        help="run only these parts (repeatable; default all)",
    )
    sp.set_defaults(func=cmd_serve)

    sp = sub.add_parser("process", help="run the pipeline on one DICOM file, offline")
    sp.add_argument("file")
    sp.add_argument("--out", required=True, help="folder for the result objects")
    sp.set_defaults(func=cmd_process)

    sp = sub.add_parser("db", help="database administration")
    sp.add_argument("action", choices=["upgrade"])
    sp.set_defaults(func=cmd_db)

    sp = sub.add_parser("jobs", help="list jobs")
    sp.add_argument("--state", choices=["queued", "running", "done", "failed", "cancelled"])
    sp.add_argument("--failed", action="store_true", help="only failed jobs")
    sp.add_argument("--kind", choices=["process", "dispatch"])
    sp.add_argument("--limit", type=int, default=100)
    sp.set_defaults(func=cmd_jobs)

    sp = sub.add_parser("retry", help="queue failed jobs again")
    sp.add_argument("ids", nargs="*", type=int)
    sp.add_argument("--failed", action="store_true", help="all failed jobs")
    sp.set_defaults(func=cmd_retry)

    sp = sub.add_parser("cancel", help="cancel queued or failed jobs")
    sp.add_argument("ids", nargs="+", type=int)
    sp.set_defaults(func=cmd_cancel)

    sp = sub.add_parser("echo", help="C-ECHO a configured destination")
    sp.add_argument("destination")
    sp.set_defaults(func=cmd_echo)

    sp = sub.add_parser("config", help="print the effective configuration")
    sp.set_defaults(func=cmd_config)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = _settings(args)
    except ConfigError as e:
        print(f"sharpray: {e}", file=sys.stderr)
        return 2
    _setup_logging(settings, args.verbose)
    try:
        return int(args.func(args, settings))
    except Exception as e:
        from node.pipeline.infer import ModelLoadError
        from node.pipeline.preprocess import UnsupportedImage

        if isinstance(e, (UnsupportedImage, ModelLoadError, OSError)):
            print(f"sharpray: {e}", file=sys.stderr)
            return 1
        raise


if __name__ == "__main__":
    sys.exit(main())
