"""The node as a real process (``sharpray serve``), configured in a temporary folder."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import yaml
from sqlalchemy import func, select

from storage import db
from storage.tables import Instance, Job
from tests.support.ports import GaveUp, free_ports, wait_for

REPO = Path(__file__).resolve().parents[2]


@dataclass
class NodeProcess:
    folder: Path
    config: dict[str, Any]
    proc: subprocess.Popen[bytes] | None = None
    logs: list[Path] = field(default_factory=list)

    @property
    def dimse_port(self) -> int:
        return int(self.config["node"]["dimse_port"])

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.config['node']['http_port']}"

    @property
    def ae_title(self) -> str:
        return str(self.config["node"]["ae_title"])

    @property
    def database_url(self) -> str:
        return str(self.config["storage"]["database_url"])

    def start(
        self,
        roles: list[str] | None = None,
        timeout: float = 90,
        extra_env: dict[str, str] | None = None,
    ) -> NodeProcess:
        cfg = self.folder / "config.yaml"
        cfg.write_text(yaml.safe_dump(self.config))
        log = self.folder / f"node-{len(self.logs)}.log"
        self.logs.append(log)
        args = [sys.executable, "-m", "node.cli", "--config", str(cfg), "serve"]
        for r in roles or []:
            args += ["--role", r]
        env = {k: v for k, v in os.environ.items() if not k.startswith("SHARPRAY_")}
        env["PYTHONPATH"] = str(REPO)
        env.update(extra_env or {})
        with log.open("wb") as out:
            self.proc = subprocess.Popen(
                args,
                cwd=self.folder,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,
            )

        def healthy() -> bool:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise GaveUp(f"node exited with {self.proc.returncode}:\n{self.log_text()[-3000:]}")
            r = httpx.get(f"{self.http_url}/healthz", timeout=2)
            return r.status_code == 200

        if roles is None or "receiver" in roles or "all" in roles:
            wait_for(healthy, timeout, "the node's /healthz")
        return self

    def health(self) -> dict[str, Any]:
        return dict(httpx.get(f"{self.http_url}/healthz", timeout=5).json())

    def log_text(self) -> str:
        return "\n".join(p.read_text(errors="replace") for p in self.logs if p.exists())

    def kill(self) -> None:
        """SIGKILL: no chance to clean up (the crash we must survive)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(30)

    def stop(self, timeout: float = 60) -> int:
        if self.proc is None:
            return 0
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return int(self.proc.returncode)

    # -- reading the index (as an administrator's tool would) ------------------------------
    def job_counts(self) -> dict[tuple[str, str], int]:
        engine = db.make_engine(self.database_url)
        try:
            with engine.connect() as c:
                rows = c.execute(
                    select(Job.kind, Job.state, func.count()).group_by(Job.kind, Job.state)
                )
                return {(k, s): int(n) for k, s, n in rows}
        finally:
            engine.dispose()

    def jobs(self) -> list[Job]:
        engine = db.make_engine(self.database_url)
        try:
            sessions = db.make_sessionmaker(engine)
            with sessions() as s:
                return list(s.scalars(select(Job).order_by(Job.id)))
        finally:
            engine.dispose()

    def process_details(self) -> dict[str, dict[str, Any]]:
        """Source SOP Instance UID -> the detail its processing job recorded."""
        engine = db.make_engine(self.database_url)
        try:
            with engine.connect() as c:
                q = (
                    select(Instance.sop_instance_uid, Job.detail)
                    .join(Instance, Instance.id == Job.instance_id)
                    .where(Job.kind == "process")
                )
                return {uid: dict(detail or {}) for uid, detail in c.execute(q)}
        finally:
            engine.dispose()

    def received_uids(self) -> set[str]:
        engine = db.make_engine(self.database_url)
        try:
            with engine.connect() as c:
                q = select(Instance.sop_instance_uid).where(Instance.origin == "received")
                return {r[0] for r in c.execute(q)}
        finally:
            engine.dispose()

    def result_paths(self) -> list[Path]:
        """Files of every object the node wrote (origin "result" in the index)."""
        engine = db.make_engine(self.database_url)
        try:
            with engine.connect() as c:
                q = select(Instance.path).where(Instance.origin == "result")
                return [Path(self.config["storage"]["folder"]) / r[0] for r in c.execute(q)]
        finally:
            engine.dispose()

    def wait_idle(self, timeout: float) -> dict[tuple[str, str], int]:
        """Wait until no job is queued or running; return the final counts."""

        def idle() -> dict[tuple[str, str], int] | None:
            counts = self.job_counts()
            busy = sum(n for (_, st), n in counts.items() if st in ("queued", "running"))
            return counts if counts and busy == 0 else None

        return wait_for(idle, timeout, "the node's queue to drain", interval=0.5)


def node_config(
    folder: Path,
    models: dict[str, Path],
    pacs: tuple[str, int] | None,
    database_url: str | None = None,
    **overrides: Any,
) -> dict[str, Any]:
    dimse_port, http_port = free_ports(2)
    cfg: dict[str, Any] = {
        "node": {
            "ae_title": "SHARPRAY",
            "bind": "127.0.0.1",
            "dimse_port": dimse_port,
            "http_port": http_port,
        },
        "storage": {
            "folder": str(folder / "store"),
            "database_url": database_url or f"sqlite:///{folder}/index.db",
        },
        "models": {
            "deblur": str(models["deblur"]),
            "classify": str(models["classify"]),
            "providers": "cpu",
        },
        "workers": {"count": 1, "dispatchers": 1, "poll_s": 0.2, "lease_s": 120},
        "dispatch": {"backoff_initial_s": 1, "backoff_max_s": 5, "timeout_s": 20},
        "destinations": {},
        # the tests count results: the default "full" pipeline reduced to the corrected image
        # and the report (tests/results covers the other objects)
        "pipelines": {
            "full": {"results": ["sc", "sr"]},
            "report_only": {"results": ["sr"]},
        },
        "routing": {"rules": [], "fallback": {"name": "fallback", "process": "full"}},
        # the test radiographs include a dog and an adult: intended use is tested on its own
        # (tests/node/test_scope.py, tests/e2e/test_demo_models.py)
        "scope": {"enabled": False},
    }
    if pacs is not None:
        cfg["destinations"]["pacs"] = {
            "type": "dimse",
            "ae_title": pacs[0],
            "host": "127.0.0.1",
            "port": pacs[1],
        }
        cfg["routing"]["fallback"]["send_results_to"] = ["pacs"]
    for key, value in overrides.items():
        cfg.setdefault(key, {}).update(value)
    return cfg
