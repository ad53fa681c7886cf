"""A disk that fills up is an ordinary, visible state. The store lies on a small tmpfs: the node
refuses what it cannot keep (0xA700) and leaves no temporary file, its workers pause instead of
failing, /healthz says why, and once space returns everything accepted is processed without
any manual step; the refused images, sent again, are accepted and processed too."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.dcmtk import storescu
from tests.support.node_proc import NodeProcess, node_config
from tests.support.ports import wait_for
from tests.support.synthetic import make_cr

pytestmark = pytest.mark.e2e

MIB = 1024 * 1024


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    mount = tmp_path / "disk"
    mount.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    r = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=48m", "tmpfs", str(mount)], capture_output=True
    )
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {r.stderr.decode(errors='replace').strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], capture_output=True)


def _free(path: Path) -> int:
    st = os.statvfs(path)
    return st.f_bavail * st.f_frsize


def test_full_disk_pauses_and_resumes_without_a_manual_step(
    tmp_path: Path, small_disk: Path, tiny_models: dict[str, Path]
) -> None:
    cfg = node_config(tmp_path, tiny_models, None)
    cfg["storage"].update(folder=str(small_disk / "store"), min_free_mb=16)
    node = NodeProcess(tmp_path, cfg).start()
    try:
        files = [tmp_path / "in" / f"{i}.dcm" for i in range(8)]
        files[0].parent.mkdir()
        for i, f in enumerate(files):
            make_cr(f, 1024, 512, seed=i)  # 1 MiB each
        # Fill the disk to just above the watermark: about three images fit.
        filler = small_disk / "filler.bin"
        with filler.open("wb") as out:
            out.write(b"\0" * max(0, _free(small_disk) - 19 * MIB))
        r = storescu(files, node.dimse_port, node.ae_title, check=False)
        stored = node.received_uids()
        assert 0 < len(stored) < len(files), (len(stored), r.stdout[-1500:], r.stderr[-1500:])
        # No temporary file of a refused image is left behind.
        assert not list((small_disk / "store" / "tmp").glob("*.part"))
        # The disk drops below the mark: the workers wait instead of failing, nothing is stuck
        # in "running", /healthz says why, and the node stays up.
        more = small_disk / "more.bin"
        with more.open("wb") as out:
            out.write(b"\0" * max(0, _free(small_disk) - 8 * MIB))
        health = httpx.get(f"{node.http_url}/healthz", timeout=10).json()
        assert health["disk"]["below_watermark"] and health["status"] == "ok", health
        assert any("processing waits" in w for w in health["warnings"]), health
        wait_for(lambda: "worker-0 paused" in node.log_text() or None, 30, "the workers' pause")
        wait_for(
            lambda: ("process", "running") not in node.job_counts() or None, 60, "no running job"
        )
        assert not any(state == "failed" for (_, state) in node.job_counts())
        # Space returns: the accepted images are processed with no manual step.
        filler.unlink()
        more.unlink()
        counts = node.wait_idle(timeout=180)
        assert counts.get(("process", "done")) == len(stored), counts
        assert not any(state == "failed" for (_, state) in counts), counts
        # The refused ones, sent again, are accepted and processed.
        storescu(files, node.dimse_port, node.ae_title)
        counts = node.wait_idle(timeout=180)
        assert counts.get(("process", "done")) == len(files), counts
        assert not list((small_disk / "store" / "tmp").glob("*.part"))
    finally:
        node.stop()


def test_results_that_hit_enospc_fail_their_attempt_and_run_again(
    tmp_path: Path, small_disk: Path, tiny_models: dict[str, Path]
) -> None:
    """No watermark at all (min_free_mb 0): the disk fills while images wait for processing. The
    worker's result writes hit ENOSPC: the job goes back to the queue at once with a transient
    reason (no 600 s lease, no traceback storm, no leftover temporary file) and is processed
    once space returns."""
    cfg = node_config(tmp_path, tiny_models, None)
    cfg["storage"].update(folder=str(small_disk / "store"), min_free_mb=0)
    cfg["workers"].update(lease_s=600, max_attempts=20)
    cfg["dispatch"].update(backoff_initial_s=1, backoff_max_s=2)
    node = NodeProcess(tmp_path, cfg).start(roles=["receiver"])
    try:
        f = tmp_path / "a.dcm"
        make_cr(f, 1024, 512, seed=1)
        storescu([f], node.dimse_port, node.ae_title)
    finally:
        node.stop()
    filler = small_disk / "filler.bin"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT)
    try:  # every last byte
        while os.write(fd, b"\0" * 65536):
            pass
    except OSError:
        pass
    finally:
        os.close(fd)
    node.start(roles=["worker"])
    try:
        job = wait_for(
            lambda: next((j for j in node.jobs() if j.kind == "process" and j.last_error), None),
            60,
            "the failed attempt",
        )
        assert "results not written" in job.last_error and job.state == "queued", job.last_error
        assert not list((small_disk / "store" / "tmp").glob("*.part"))
        assert node.log_text().count("Traceback") == 0
        filler.unlink()
        counts = node.wait_idle(timeout=120)
        assert counts.get(("process", "done")) == 1, counts
    finally:
        node.stop()
