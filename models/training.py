"""What every training script here shares: one run folder with its log, the thread, seed and
device settings, a clock that carries across resumes, atomic checkpoints, and a clean stop on
SIGTERM/SIGINT or when ``--max-minutes`` of this invocation have passed (so the end of a session
never loses more than one checkpoint interval; ``--resume`` continues).

Used by :mod:`models.train_classifier`, :mod:`models.train_refiner` and :mod:`models.train_deblur`.
"""

from __future__ import annotations

import argparse
import math
import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType

import torch


def add_run_arguments(ap: argparse.ArgumentParser) -> None:
    """The options every training script takes, with the same meaning everywhere."""
    ap.add_argument(
        "--checkpoint-minutes",
        type=float,
        default=5.0,
        help="write OUT/last.pt at least this often (and on SIGTERM/SIGINT)",
    )
    ap.add_argument(
        "--max-minutes",
        type=float,
        default=0.0,
        help="stop resumably after this long (this invocation; 0 = no limit)",
    )
    ap.add_argument("--resume", action="store_true", help="continue from OUT's checkpoint")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    ap.add_argument("--device", default="auto", help="auto (CUDA where present), cpu, cuda")


def pick_device(name: str) -> torch.device:
    """``auto``: CUDA where present, else the CPU; otherwise the device named."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def save_atomic(obj: object, path: Path) -> None:
    """``torch.save`` through a temporary file, so a kill mid-write leaves the old file intact."""
    tmp = path.with_name(path.name + ".tmp")
    torch.save(obj, tmp)
    tmp.replace(path)


class TrainingRun:
    """The run folder, its log and clock, and when to checkpoint or stop.

    ``elapsed()`` counts the training time of earlier invocations too (set by :meth:`resumed`);
    ``--max-minutes`` counts this invocation only, so each session can be given its own budget.
    """

    def __init__(
        self,
        out: Path,
        *,
        threads: int = 2,
        seed: int = 0,
        device: str = "auto",
        checkpoint_minutes: float = 5.0,
        max_minutes: float = 0.0,
    ) -> None:
        torch.set_num_threads(threads)
        torch.manual_seed(seed)
        self.device = pick_device(device)
        self.out = out
        out.mkdir(parents=True, exist_ok=True)
        self._checkpoint_s = checkpoint_minutes * 60.0
        self._started = time.time()
        self._deadline = self._started + max_minutes * 60.0 if max_minutes > 0 else math.inf
        self._elapsed_before = 0.0
        self._next_checkpoint = self._started + self._checkpoint_s
        self.stop_requested = False

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> TrainingRun:
        """From the options of :func:`add_run_arguments` and ``args.out``."""
        return cls(
            Path(args.out),
            threads=args.threads,
            seed=args.seed,
            device=args.device,
            checkpoint_minutes=args.checkpoint_minutes,
            max_minutes=args.max_minutes,
        )

    def log(self, msg: str) -> None:
        """A time-stamped line on stdout and in ``OUT/train.log``."""
        line = f"{time.strftime('%H:%M:%S')} {msg}"
        print(line, flush=True)
        with (self.out / "train.log").open("a", encoding="utf-8") as f:
            f.write(line + "\n")

    def resumed(self, elapsed_before: float) -> None:
        """Training seconds spent by earlier invocations (from the checkpoint)."""
        self._elapsed_before = float(elapsed_before)

    def elapsed(self) -> float:
        """Training seconds so far, earlier invocations included."""
        return self._elapsed_before + time.time() - self._started

    def should_stop(self) -> bool:
        """A signal asked to stop, or this invocation's time is up."""
        return self.stop_requested or time.time() > self._deadline

    def checkpoint_due(self) -> bool:
        """True once every ``--checkpoint-minutes`` (the interval restarts when it says so)."""
        now = time.time()
        if now < self._next_checkpoint:
            return False
        self._next_checkpoint = now + self._checkpoint_s
        return True

    @contextmanager
    def stop_on_signals(self) -> Iterator[None]:
        """While inside, SIGTERM and SIGINT set :attr:`stop_requested` instead of killing."""

        def on_signal(signum: int, frame: FrameType | None) -> None:
            self.stop_requested = True

        old = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
        try:
            yield
        finally:
            for s, h in old.items():
                signal.signal(s, h)
