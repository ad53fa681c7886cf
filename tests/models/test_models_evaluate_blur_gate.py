"""The blur gate's evaluation (``python -m models.evaluate_blur_gate``) on a small generated set:
the false-alarm question alone, with the node's estimate and with a round's candidate."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image

from models.evaluate_blur_gate import main
from tests.support.synthetic import power_law_field


def test_false_alarms_only_reads_the_sharp_set_and_names_the_estimate(tmp_path: Path) -> None:
    data = tmp_path / "data"
    nih = data / "cxr-labeled" / "nih1024"
    nih.mkdir(parents=True)
    for seed in (1, 2):
        grey = (power_law_field(512, seed, 1.0, 0.1, 0.9) * 255).astype(np.uint8)
        Image.fromarray(grey).save(nih / f"sharp-{seed}.png")
    forms = ([], ["--eta-follows-motion"], ["--avoid-shadows"])
    for i, flags in enumerate((*forms, ["--avoid-shadows", "--clear-windows-from-mm", "1.5"])):
        out = tmp_path / f"gate{i}.json"
        argv = ["--data", str(data), "--out", str(out), "--false-alarms-only", *flags]
        assert main(argv) == 0
        result = json.loads(out.read_text())
        assert result["detection"] == {}  # question 2 not asked
        said = result["policy"]
        assert said["estimate_eta_follows_motion"] is ("--eta-follows-motion" in flags)
        # the node's estimate keeps its windows clear of the shadows from 2 mm, finer than 0.4
        # mm (since 0.42.0); --avoid-shadows: the fifty-fifth round's form, everywhere, or from
        # the length given (the fifty-sixth round's candidates)
        assert said["estimate_avoids_shadows"] is True
        limits = (said["clear_windows_from_mm"], said["clear_windows_finer_than_mm"])
        if "--avoid-shadows" not in flags:
            assert limits == (2.0, 0.4)
        else:
            assert limits == ((1.5 if "1.5" in flags else None), None)
        assert result["false_alarms"]["nih1024"]["images"] == 2
        assert result["false_alarms"]["nih1024"]["flagged"] == []  # sharp fields stay sharp
