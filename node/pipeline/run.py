"""The one per-image pipeline: a decoded radiograph, the models and a plan in; everything out.

The worker (``node.pipeline.worker``), ``sharpray process`` and ``bench/`` all call
:func:`run_image`, so what ``process`` shows is what the node sends:

1. the blur gate estimates the motion in mm (when ``plan.blur_gate`` is set) and ``on_blur`` is
   told at once (the worker queues the fast notice for the X-ray room from there);
2. the plan's correction policy decides whether to correct (``always`` / ``when_blurred`` /
   ``never``); the correction itself is done only where the estimate supports it;
3. intended use, classification and explanation (:func:`node.pipeline.analyse.analyse`);
4. the result objects the plan asks for (:func:`node.pipeline.outputs.build_results`); an image
   that was not corrected gets no corrected series.

Nothing here touches the database, the file store or the network.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from pydicom.dataset import Dataset

from node.config import BlurGateSettings, ResultSettings, Settings
from node.pipeline.analyse import Models, analyse
from node.pipeline.blur_gate import BlurAssessment, Policy, assess, should_correct
from node.pipeline.outputs import build_results
from node.pipeline.results.inputs import Analysis, Producer
from node.result_selection import ResultSelection


@dataclass(frozen=True)
class Plan:
    """What to do with one image: the blur gate, the correction policy, the result objects."""

    results: ResultSettings
    correct: Policy = "always"
    blur_gate: BlurGateSettings | None = None  # None: no gate (no estimate before correction)

    @classmethod
    def for_pipeline(
        cls, settings: Settings, pipeline: str | None, results: tuple[str, ...] = ()
    ) -> Plan:
        """The plan of the named pipeline; ``results``: the kinds the routing decision lists
        (default: the pipeline's own). Raises KeyError for a pipeline that is not configured.

        The ``results.*`` flags (``corrected_sc``, ``overlay_sc``, ``gsps``, ``seg``,
        ``report_sr``) are master switches: a pipeline builds a kind only when it lists it *and*
        its switch is on, so ``results.seg: false`` turns SEGs off everywhere at once, and
        ``results.seg: true`` alone sends no SEG from a pipeline that does not list ``seg``.
        """
        p = settings.pipelines.get(pipeline or "")
        if pipeline and p is None:
            raise KeyError(f"no pipeline {pipeline!r} in the configuration")
        kinds = results or (tuple(p.results) if p is not None else ())
        chosen = settings.results
        if kinds:
            switched_on = set(chosen.kinds())
            wanted = ResultSelection.from_kinds(k for k in kinds if k in switched_on)
            chosen = chosen.model_copy(update=wanted.model_dump())
        return cls(
            results=chosen,
            correct=p.correct if p is not None else "always",
            blur_gate=settings.blur_gate if settings.blur_gate.enabled else None,
        )


@dataclass(frozen=True)
class Outcome:
    """Everything the pipeline produced for one image."""

    analysis: Analysis
    blur: BlurAssessment | None  # None: the gate did not run
    corrected: bool  # the pipeline's policy asked for a correction
    results: tuple[tuple[str, Dataset], ...]  # (kind, dataset) in build order
    seconds: float

    @property
    def decision(self) -> str:
        """The blur gate's decision, or ``not assessed``."""
        return self.blur.decision if self.blur is not None else "not assessed"


def run_image(
    ds: Dataset,
    models: Models,
    plan: Plan,
    producer: Producer,
    *,
    on_blur: Callable[[BlurAssessment], None] | None = None,
) -> Outcome:
    """Run the whole per-image chain on ``ds``; raises ``UnsupportedImage`` for what it can't."""
    t0 = time.perf_counter()
    blur = assess(ds, plan.blur_gate) if plan.blur_gate is not None else None
    if blur is not None and on_blur is not None:
        on_blur(blur)
    correct = should_correct(plan.correct, blur)
    analysis = analyse(ds, models, correct=correct, blur=blur)
    chosen = plan.results if correct else plan.results.model_copy(update={"corrected_sc": False})
    results = tuple(build_results(analysis, chosen, producer))
    return Outcome(analysis, blur, correct, results, time.perf_counter() - t0)
