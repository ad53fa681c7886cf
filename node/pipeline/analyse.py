"""The processing chain on one radiograph, as plain functions: decode -> deblur -> classify -> explain."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
from pydicom.dataset import Dataset

from models.sharpness import sharpness
from node.pipeline.infer import Classifier, Deblurrer
from node.pipeline.preprocess import (
    decode,
    from_unit_stored_range,
    to_model_input,
    to_unit_stored_range,
    to_unit_voi,
)
from node.pipeline.results.inputs import Analysis, Finding, ModelInfo


@dataclass
class Models:
    deblur: Deblurrer
    classify: Classifier

    def infos(self) -> tuple[ModelInfo, ModelInfo]:
        return (
            ModelInfo.from_manifest(self.deblur.model.manifest),
            ModelInfo.from_manifest(self.classify.model.manifest),
        )


def analyse(ds: Dataset, models: Models, *, correct: bool = True) -> Analysis:
    """Correct, classify and explain one radiograph; raises UnsupportedImage for what it can't.

    ``correct=False`` (the blur gate found it sharp, or the pipeline never corrects): the deblur
    model is not run; the image is classified as received (``extra["classified"]`` says which).
    """
    r = decode(ds)
    if correct:
        unit = to_unit_stored_range(r)
        corrected_unit = models.deblur(unit)
        corrected = from_unit_stored_range(r, corrected_unit)
    else:
        corrected = r.stored

    # The classifier sees the corrected image as a viewer would show it.
    shown = to_unit_voi(dataclasses.replace(r, stored=corrected))
    spec = models.classify.model.manifest.input
    result = models.classify(to_model_input(shown, spec.mean, spec.std, spec.size))
    labels = models.classify.model.manifest.labels
    findings = [
        Finding(
            label=lab.name,
            code=lab.code,
            probability=float(result.probabilities[lab.index]),
            is_finding=lab.is_finding,
        )
        for lab in labels
    ]
    # Explain the most probable finding class (the "why" of a positive or of a near miss).
    finding_labels = [lab for lab in labels if lab.is_finding] or labels
    explained = max(finding_labels, key=lambda lab: float(result.probabilities[lab.index]))
    heatmap = result.heatmap(explained.index, r.stored.shape)
    deblur_info, classify_info = models.infos()
    return Analysis(
        source=ds,
        corrected=corrected,
        deblur_model=deblur_info,
        classifier_model=classify_info,
        findings=findings,
        heatmap=heatmap,
        sharpness_before=float(sharpness(np.asarray(to_unit_voi(r)))),
        sharpness_after=float(sharpness(shown)) if correct else None,
        extra={
            "explained_label": explained.name,
            "classified": "corrected" if correct else "original",
        },
    )
