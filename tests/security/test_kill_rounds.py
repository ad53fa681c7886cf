"""Three rounds of SIGKILL at random moments while dcmtk storescu sends a 200-instance batch
(each after a random number of acknowledged instances, up to half of what is pending).

Like a modality, storescu sends again what was not acknowledged. After the last restart every
instance that got a success status is stored, indexed, processed, and its results are in Orthanc
exactly once (one corrected SC and one SR per source)."""

from __future__ import annotations

import os
import random
import subprocess
import threading
import time
from pathlib import Path

import pydicom
import pytest

from tests.support.dcmtk import require
from tests.support.node_proc import NodeProcess, node_config
from tests.support.orthanc import start_orthanc
from tests.support.synthetic import make_cr

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

N = 200


class Modality:
    """storescu in the background, recording which files got a success response."""

    def __init__(self, port: int, files: list[Path]) -> None:
        self.acknowledged: set[Path] = set()
        env = {**os.environ, "TCP_NODELAY": "1"}
        self.proc = subprocess.Popen(
            [
                "storescu",
                "-v",
                "-aet",
                "MODALITY",
                "-aec",
                "SHARPRAY",
                "127.0.0.1",
                str(port),
                *map(str, files),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
        )
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        current: Path | None = None
        for line in self.proc.stdout:
            if "Sending file: " in line:
                current = Path(line.split("Sending file: ", 1)[1].strip())
            elif "Received Store Response (Success)" in line and current is not None:
                self.acknowledged.add(current)

    def wait(self) -> None:
        self.proc.wait(300)
        self.reader.join(30)


def test_three_sigkills_during_a_batch_lose_nothing_and_deliver_once(
    tmp_path: Path, tiny_models: dict[str, Path]
) -> None:
    require("storescu")
    rng = random.Random(20261125)
    data = tmp_path / "batch"
    data.mkdir()
    files = [data / f"img{i:03}.dcm" for i in range(N)]
    for i, f in enumerate(files):
        make_cr(f, 96, 80, seed=i)
    orthanc = start_orthanc(tmp_path / "orthanc")
    node = NodeProcess(
        tmp_path / "node",
        node_config(tmp_path / "node", tiny_models, (orthanc.aet, orthanc.dicom_port)),
    )
    (tmp_path / "node").mkdir()
    acknowledged: set[Path] = set()
    per_round: list[int] = []
    try:
        for _round in range(3):
            node.start()
            pending = [f for f in files if f not in acknowledged]
            modality = Modality(node.dimse_port, pending)
            # the random moment of the crash: after a random share of what is pending has been
            # acknowledged (polled, so a fast machine cannot finish the batch first)
            crash_after = rng.randint(1, max(1, len(pending) // 2))
            deadline = time.monotonic() + 120
            while (
                len(modality.acknowledged) < crash_after
                and modality.proc.poll() is None
                and time.monotonic() < deadline
            ):
                time.sleep(0.005)
            node.kill()
            modality.wait()
            acknowledged |= modality.acknowledged
            per_round.append(len(acknowledged))
        # the crashes hit the batch while it was being received
        assert per_round[0] < N, per_round
        # the last restart: the modality sends what is still unacknowledged, then all settles
        node.start()
        modality = Modality(node.dimse_port, [f for f in files if f not in acknowledged])
        modality.wait()
        acknowledged |= modality.acknowledged
        assert len(acknowledged) == N
        counts = node.wait_idle(timeout=600)
        received = node.received_uids()
        uids = {
            str(pydicom.dcmread(f, stop_before_pixels=True).SOPInstanceUID) for f in acknowledged
        }
        assert uids <= received
        failed = [(j.kind, j.last_error) for j in node.jobs() if j.state == "failed"]
        assert not failed, (counts, failed)
        # processed: exactly one finished processing job per source
        done = [j for j in node.jobs() if j.kind == "process" and j.state == "done"]
        assert len(done) == N and len({j.instance_id for j in done}) == N
        # delivered exactly once: one SC and one SR per source in Orthanc, nothing else
        assert len(orthanc.instances()) == 2 * N
    finally:
        node.kill()
        orthanc.stop()
