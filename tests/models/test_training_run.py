"""models.training: the run folder, clock, checkpoints and clean stop every training script shares."""

from __future__ import annotations

import argparse
import os
import signal
import time
from pathlib import Path

import pytest
import torch

from models.training import TrainingRun, add_run_arguments, save_atomic


def test_a_signal_inside_the_run_asks_to_stop_and_the_old_handler_comes_back(
    tmp_path: Path,
) -> None:
    run = TrainingRun(tmp_path / "out", threads=1)
    before = signal.getsignal(signal.SIGTERM)
    with run.stop_on_signals():
        assert not run.should_stop()
        os.kill(os.getpid(), signal.SIGTERM)
        # Python runs the handler at the next bytecode boundary; poll briefly.
        deadline = time.time() + 5
        while not run.stop_requested and time.time() < deadline:
            time.sleep(0.01)
        assert run.should_stop()
    assert signal.getsignal(signal.SIGTERM) is before


def test_max_minutes_counts_this_invocation_and_elapsed_counts_earlier_ones(
    tmp_path: Path,
) -> None:
    run = TrainingRun(tmp_path, max_minutes=1e-6, threads=1)
    time.sleep(0.01)
    assert run.should_stop()
    fresh = TrainingRun(tmp_path, max_minutes=10, threads=1)
    fresh.resumed(3600.0)  # an hour in earlier sessions does not use up this session's limit
    assert not fresh.should_stop()
    assert 3600.0 <= fresh.elapsed() < 3660.0
    assert not TrainingRun(tmp_path, threads=1).should_stop()  # 0 = no limit


def test_checkpoint_due_once_per_interval(tmp_path: Path) -> None:
    run = TrainingRun(tmp_path, checkpoint_minutes=1e-6, threads=1)
    time.sleep(0.01)
    assert run.checkpoint_due()
    slow = TrainingRun(tmp_path, checkpoint_minutes=10, threads=1)
    assert not slow.checkpoint_due()


def test_log_goes_to_the_run_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = TrainingRun(tmp_path / "new" / "run", threads=1)
    run.log("epoch 1 done")
    assert "epoch 1 done" in (tmp_path / "new" / "run" / "train.log").read_text()
    assert "epoch 1 done" in capsys.readouterr().out


def test_save_atomic_replaces_and_leaves_no_temporary(tmp_path: Path) -> None:
    path = tmp_path / "last.pt"
    save_atomic({"step": 1}, path)
    save_atomic({"step": 2}, path)
    assert torch.load(path, weights_only=False)["step"] == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.pt"]


def test_run_arguments_and_from_args(tmp_path: Path) -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", type=Path)
    add_run_arguments(ap)
    args = ap.parse_args(["--out", str(tmp_path), "--device", "cpu", "--max-minutes", "30"])
    run = TrainingRun.from_args(args)
    assert run.device == torch.device("cpu") and run.out == tmp_path
    assert not args.resume and args.checkpoint_minutes == 5.0 and args.threads == 2
