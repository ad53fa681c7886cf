"""``sharpray``: the command line.

    sharpray serve [--role ROLE ...]     run the node (DIMSE SCP, HTTP, workers, dispatchers)
    sharpray process FILE|DIR... --out DIR  run the node's pipeline on files, offline
    sharpray db upgrade                  apply database migrations
    sharpray jobs [--state S] [--failed] list jobs
    sharpray quarantine [--json]         what was kept but cannot be processed, with reasons
    sharpray retry ID ... | --failed     queue failed jobs again
    sharpray cancel ID ...               cancel queued or failed jobs
    sharpray echo DESTINATION            C-ECHO (or DICOMweb ping) a configured destination
    sharpray route --dry-run FILE ...    which routing rule matches, which actions follow
    sharpray audit [--instance UID] ...  routing decisions, deliveries, admin actions
    sharpray config                      print the effective configuration

Every command takes ``--config FILE`` (default: $SHARPRAY_CONFIG, else ./config.yaml if present).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import signal
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

import yaml

from node import __version__
from node.config import ConfigError, Settings, config_path, load_settings

if TYPE_CHECKING:  # the pipeline (onnxruntime, models) is imported only by the commands using it
    from node.instance_index import Received
    from node.pipeline.analyse import Models
    from node.pipeline.results.inputs import Producer
    from node.pipeline.run import Plan

log = logging.getLogger("sharpray")


def _settings(args: argparse.Namespace) -> Settings:
    return load_settings(config_path(args.config))


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


def _process_inputs(paths: list[str]) -> list[Path]:
    """The files to process: each FILE as given; in each DIR (recursively, sorted) the files that
    look like DICOM (a ``DICM`` preamble or a ``.dcm`` name)."""
    files: list[Path] = []
    for raw in paths:
        p = Path(raw)
        if not p.is_dir():
            files.append(p)
            continue
        for f in sorted(q for q in p.rglob("*") if q.is_file()):
            if f.suffix.lower() == ".dcm":
                files.append(f)
                continue
            with contextlib.suppress(OSError), f.open("rb") as fh:
                head = fh.read(132)
                if head[128:132] == b"DICM":
                    files.append(f)
    return files


def cmd_process(args: argparse.Namespace, settings: Settings) -> int:
    """Many files, models loaded once; one JSON line per input, then a summary line."""
    from node.app import load_models
    from node.instance_index import Received
    from node.pipeline.outputs import producer_for
    from node.pipeline.run import Plan

    files = _process_inputs(args.inputs)
    if not files:
        print("sharpray: no DICOM files in " + ", ".join(args.inputs), file=sys.stderr)
        return 1
    if args.pipeline is not None and args.pipeline not in settings.pipelines:
        known = ", ".join(settings.pipelines) or "none"
        print(f"sharpray: no pipeline {args.pipeline!r} (configured: {known})", file=sys.stderr)
        return 2
    t0 = time.perf_counter()
    models = load_models(settings)
    load_s = time.perf_counter() - t0
    producer = producer_for(settings.results)
    received = Received("dimse", args.calling_ae, args.called_ae or settings.node.ae_title)
    plan_override = (
        Plan.for_pipeline(settings, args.pipeline) if args.pipeline is not None else None
    )
    counts = {"processed": 0, "not processed": 0, "refused": 0, "failed": 0}
    seconds: list[float] = []
    for f in files:
        record = _process_one(
            f, Path(args.out), settings, models, producer, received, plan_override, args.verbose
        )
        counts[str(record["status"])] += 1
        if record["status"] == "processed":
            seconds.append(float(record["seconds"]))  # type: ignore[arg-type]
        print(json.dumps(record), flush=True)
    summary = {
        "inputs": len(files),
        **counts,
        "models_load_s": round(load_s, 2),
        "seconds_per_image": round(sum(seconds) / len(seconds), 3) if seconds else None,
        "total_s": round(time.perf_counter() - t0, 2),
    }
    print(json.dumps({"summary": summary}), flush=True)
    return 0 if counts["refused"] == counts["failed"] == 0 else 1


def _process_one(
    file: Path,
    out: Path,
    settings: Settings,
    models: Models,
    producer: Producer,
    received: Received,
    plan_override: Plan | None,
    verbose: bool,
) -> dict[str, object]:
    """One input through the node's own chain: validate as the receivers do, route, run_image."""
    from node.ingest import IngestError, validate
    from node.pipeline.preprocess import UnsupportedImage, read_dataset
    from node.pipeline.run import Plan, run_image
    from node.pipeline.worker import encode
    from node.route import decide

    record: dict[str, object] = {"file": str(file)}
    try:
        data = file.read_bytes()
        try:  # what the receivers would refuse is refused here too, before anything is written
            validate(data)
        except IngestError as e:
            raise UnsupportedImage(str(e)) from e
        ds = read_dataset(data)
        if plan_override is None:
            decision = decide(settings, ds, received)
            record["rule"] = decision.rule
            if not decision.pipeline:
                record.update(status="not processed", reason=decision.summary())
                return record
            plan = Plan.for_pipeline(settings, decision.pipeline, decision.results)
            record["pipeline"] = decision.pipeline
        else:
            plan = plan_override
        outcome = run_image(ds, models, plan, producer)
    except (UnsupportedImage, OSError) as e:
        reason = e.strerror if isinstance(e, OSError) and e.strerror else str(e)
        print(f"sharpray: cannot process {file}: {reason}", file=sys.stderr)
        record.update(status="refused", reason=reason)
        return record
    except Exception as e:  # the text of an unexpected error may quote the file's values
        if verbose:
            log.exception("processing %s failed", file)
        print(f"sharpray: cannot process {file} ({type(e).__name__})", file=sys.stderr)
        record.update(status="failed", reason=type(e).__name__)
        return record
    a = outcome.analysis
    written = []
    out.mkdir(parents=True, exist_ok=True)
    for kind, result in outcome.results:
        path = out / f"{kind}-{result.SOPInstanceUID}.dcm"
        path.write_bytes(encode(result))
        written.append(str(path))
    record.update(
        status="processed",
        blur={
            "decision": outcome.decision,
            "motion_mm": round(a.motion.motion_mm, 3) if a.motion is not None else None,
            "pixel_spacing_assumed": a.motion.spacing_assumed if a.motion is not None else None,
        },
        corrected=outcome.corrected and a.classified == "corrected",
        correction=a.correction,
        scope=a.scope.summary() if a.scope is not None else "not checked",
        findings={f.label: round(f.probability, 4) for f in a.findings},
        present=[f.label for f in a.findings if f.is_finding and f.present],
        classified=a.classified,
        sharpness_before=a.sharpness_before,
        sharpness_after=a.sharpness_after,
        written=written,
        seconds=round(outcome.seconds, 3),
    )
    return record


def cmd_quarantine(args: argparse.Namespace, settings: Settings) -> int:
    """What was kept but cannot be processed (node.admin.quarantine)."""
    from node import admin

    with _sessions(settings)() as s:
        entries = admin.quarantine(s, Path(settings.storage.folder))
    if args.json:
        print(json.dumps(entries, indent=2))
    else:
        for e in entries:
            what = f"job {e['job']}  {e['instance']}" if "job" in e else str(e["path"])
            print(f"{e['kind']:<16} {what}  {e['reason']}")
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
    from node import admin

    f = admin.JobFilter(
        state="failed" if args.failed else args.state,
        kind=args.kind,
        destination=args.destination,
        rule=args.rule,
        instance=args.instance,
        limit=args.limit,
    )
    with _sessions(settings)() as s:
        rows = [(job, inst.sop_instance_uid) for job, inst in admin.list_jobs(s, f)]
        summaries = [admin.job_summary(job, uid) for job, uid in reversed(rows)]
    if args.json:
        print(json.dumps(summaries, indent=2))
        return 0
    print(
        f"{'ID':>6} {'KIND':9} {'STATE':10} {'TRY':>5} {'RULE':14} {'DEST':10} "
        f"{'N':>2} {'INSTANCE':40} ERROR"
    )
    for j in summaries:
        print(
            f"{j['id']:>6} {j['kind']:9} {j['state']:10} {j['attempts']:>2}/{j['max_attempts']:<2} "
            f"{(j['rule'] or '-')[:14]:14} {(j['destination'] or '-')[:10]:10} "
            f"{j['instances']:>2} {j['instance']:40} {(j['error'] or '')[:120]}"
        )
    return 0


def _admin() -> str:
    import getpass

    try:
        return f"cli:{getpass.getuser()}"[:64]
    except Exception:
        return "cli"


def cmd_retry(args: argparse.Namespace, settings: Settings) -> int:
    from node import admin

    if not args.ids and not args.failed:
        print("give job IDs or --failed", file=sys.stderr)
        return 2
    with _sessions(settings).begin() as s:
        n = admin.retry_jobs(s, None if args.failed else args.ids, _admin())
    print(f"{n} job(s) queued again")
    return 0


def cmd_cancel(args: argparse.Namespace, settings: Settings) -> int:
    from node import admin

    with _sessions(settings).begin() as s:
        n = admin.cancel_jobs(s, args.ids, _admin())
    print(f"{n} job(s) cancelled")
    return 0


def cmd_echo(args: argparse.Namespace, settings: Settings) -> int:
    from node.config import DicomwebDestination, ReturnToSenderDestination
    from node.dispatch import dimse, stow
    from node.dispatch.errors import DeliveryError

    dest = settings.destinations.get(args.destination)
    if dest is None:
        known = ", ".join(sorted(settings.destinations)) or "none"
        print(
            f"no destination {args.destination!r} in the configuration ({known})", file=sys.stderr
        )
        return 2
    if isinstance(dest, ReturnToSenderDestination):
        print(
            f"{args.destination} returns results to whichever modality sent the image: "
            "there is no fixed peer to echo",
            file=sys.stderr,
        )
        return 2
    what = "DICOMweb ping (QIDO-RS)" if isinstance(dest, DicomwebDestination) else "C-ECHO"
    try:
        if isinstance(dest, DicomwebDestination):
            stow.ping(dest, settings.dispatch.timeout_s)
        else:
            dimse.echo(dest, settings.node.ae_title, settings.dispatch.timeout_s)
    except DeliveryError as e:
        print(f"{what} to {args.destination} failed: {e}", file=sys.stderr)
        return 1
    print(f"{what} to {args.destination} ({dest.describe()}) succeeded")
    return 0


def cmd_route(args: argparse.Namespace, settings: Settings) -> int:
    import pydicom

    from node.instance_index import Received
    from node.route import explain

    if not args.dry_run:
        print(
            "only --dry-run is supported: routing of received images is automatic", file=sys.stderr
        )
        return 2
    files: list[Path] = []
    for f in args.files:
        p = Path(f)
        files += sorted(x for x in p.rglob("*") if x.is_file()) if p.is_dir() else [p]
    received = Received(
        source=args.source, calling_ae=args.calling_ae, called_ae=args.called_ae or None
    )
    matched: dict[str, int] = {r.name: 0 for r in settings.routing.rules}
    matched[settings.routing.fallback.name] = 0
    report = []
    for f in files:
        try:
            header = pydicom.dcmread(f, stop_before_pixels=True)
        except Exception as e:
            print(f"{f}: not a readable DICOM file ({type(e).__name__})", file=sys.stderr)
            continue
        run = explain(settings, header, received)
        matched[run.decision.rule] += 1
        entry = {
            "file": str(f),
            "sop_instance_uid": str(header.get("SOPInstanceUID", "")),
            "rule": run.decision.rule,
            "fallback": run.decision.fallback,
            "actions": run.decision.to_detail(),
            "summary": run.decision.summary(),
            "checks": [
                {"rule": c.rule, "matched": c.matched, "failed": c.failed} for c in run.checks
            ],
        }
        report.append(entry)
        if not args.json:
            print(f"{f}: {entry['summary']}")
            for c in run.checks:
                mark = "match" if c.matched else f"no: {c.failed}"
                print(f"    {c.rule}: {mark}")
    unused = [name for name, n in matched.items() if n == 0]
    if args.json:
        print(json.dumps({"files": report, "rules_matching_nothing": unused}, indent=2))
    elif files:
        for name in unused:
            print(f"rule {name} matches none of these {len(report)} file(s)")
    return 0 if report else 1


def cmd_audit(args: argparse.Namespace, settings: Settings) -> int:
    from node import admin

    f = admin.AuditFilter(
        instance=args.instance,
        event=args.event,
        job=args.job,
        actor=args.actor,
        outcome=args.outcome,
        limit=args.limit,
    )
    with _sessions(settings)() as s:
        rows = admin.audit_events(s, f)
    if args.json:
        out = [
            {
                "id": e.id,
                "at": e.at.isoformat(),
                "event": e.event,
                "instance": e.instance_uid,
                "job": e.job_id,
                "actor": e.actor,
                "outcome": e.outcome,
                "detail": e.detail,
            }
            for e in rows
        ]
        print(json.dumps(out, indent=2))
        return 0
    print(f"{'AT (UTC)':19} {'EVENT':14} {'OUTCOME':8} {'JOB':>6} {'ACTOR':16} INSTANCE / DETAIL")
    for e in rows:
        print(
            f"{e.at:%Y-%m-%d %H:%M:%S} {e.event:14} {e.outcome:8} {e.job_id or '-':>6} "
            f"{(e.actor or '-')[:16]:16} {e.instance_uid or '-'} {e.detail or ''}"
        )
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

    sp = sub.add_parser(
        "process", help="run the node's pipeline on DICOM files and folders, offline"
    )
    sp.add_argument("inputs", nargs="+", metavar="FILE|DIR", help="DICOM files or folders")
    sp.add_argument("--out", required=True, help="folder for the result objects")
    sp.add_argument(
        "--pipeline", default=None, help="run this pipeline (default: as the routing decides)"
    )
    sp.add_argument("--calling-ae", default=None, help="route as if sent by this AE title")
    sp.add_argument("--called-ae", default=None, help="route as if sent to this AE title")
    sp.set_defaults(func=cmd_process)

    sp = sub.add_parser(
        "quarantine", help="instances kept but not processable, and files set aside at start"
    )
    sp.add_argument("--json", action="store_true")
    sp.set_defaults(func=cmd_quarantine)

    sp = sub.add_parser("db", help="database administration")
    sp.add_argument("action", choices=["upgrade"])
    sp.set_defaults(func=cmd_db)

    sp = sub.add_parser("jobs", help="list jobs")
    sp.add_argument("--state", choices=["queued", "running", "done", "failed", "cancelled"])
    sp.add_argument("--failed", action="store_true", help="only failed jobs")
    sp.add_argument("--kind", choices=["process", "dispatch"])
    sp.add_argument("--destination", help="only dispatch jobs to this destination")
    sp.add_argument("--rule", help="only jobs created by this routing rule")
    sp.add_argument("--instance", metavar="UID", help="only jobs of this SOP Instance UID")
    sp.add_argument("--limit", type=int, default=100)
    sp.add_argument("--json", action="store_true", help="machine-readable output")
    sp.set_defaults(func=cmd_jobs)

    sp = sub.add_parser("retry", help="queue failed jobs again")
    sp.add_argument("ids", nargs="*", type=int)
    sp.add_argument("--failed", action="store_true", help="all failed jobs")
    sp.set_defaults(func=cmd_retry)

    sp = sub.add_parser("cancel", help="cancel queued or failed jobs")
    sp.add_argument("ids", nargs="+", type=int)
    sp.set_defaults(func=cmd_cancel)

    sp = sub.add_parser("echo", help="C-ECHO (DICOM) or ping (DICOMweb) a configured destination")
    sp.add_argument("destination")
    sp.set_defaults(func=cmd_echo)

    sp = sub.add_parser("route", help="which routing rule a file would match, and what follows")
    sp.add_argument("files", nargs="+", metavar="FILE", help="DICOM files or folders")
    sp.add_argument("--dry-run", action="store_true", required=True, help="decide, change nothing")
    sp.add_argument("--source", choices=["dimse", "dicomweb"], default="dimse")
    sp.add_argument("--calling-ae", default=None, help="as if sent by this AE title")
    sp.add_argument("--called-ae", default=None, help="as if sent to this AE title")
    sp.add_argument("--json", action="store_true", help="machine-readable output")
    sp.set_defaults(func=cmd_route)

    sp = sub.add_parser("audit", help="routing decisions, deliveries and admin actions")
    sp.add_argument("--instance", metavar="UID", help="only events of this SOP Instance UID")
    sp.add_argument("--event", help="received | routed | processed | delivery | admin.retry ...")
    sp.add_argument("--job", type=int, help="only events of this job")
    sp.add_argument("--actor", help="calling AE, destination name, worker or admin")
    sp.add_argument("--outcome", choices=["ok", "retry", "failed", "ignored"])
    sp.add_argument("--limit", type=int, default=100)
    sp.add_argument("--json", action="store_true", help="machine-readable output")
    sp.set_defaults(func=cmd_audit)

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
    if args.command == "process" and not args.verbose:
        from node.logs import setup_logging

        setup_logging("CRITICAL")  # offline: the outcome lines alone (--verbose: all)
        for handler in logging.getLogger().handlers:  # libraries set their own logger levels
            handler.setLevel(logging.CRITICAL)
    else:
        _setup_logging(settings, args.verbose)
    try:
        return int(args.func(args, settings))
    except Exception as e:
        from node.pipeline.infer import ModelLoadError
        from node.pipeline.preprocess import UnsupportedImage

        if isinstance(e, (UnsupportedImage, ModelLoadError, OSError, ConfigError)):
            print(f"sharpray: {e}", file=sys.stderr)
            return 1
        raise


if __name__ == "__main__":
    sys.exit(main())
