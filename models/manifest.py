"""The manifest that travels beside every exported ONNX model.

The node loads models only through a manifest: it names the ONNX file, proves its integrity (sha256),
says how to feed it (input spec and normalisation), what it answers (labels and their codes) and
what it is (name, version, a Device UID that changes whenever the weights change). This module is
torch-free: the serving install imports it.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

MANIFEST_NAME = "manifest.json"


class CodedConcept(BaseModel):
    """A DICOM coded concept (Code Value, Coding Scheme Designator, Code Meaning)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    value: str
    scheme: str
    meaning: str


class Label(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    index: int = Field(ge=0)
    name: str
    code: CodedConcept
    # True for the class that is a finding (e.g. pneumonia), False for "normal"/"no finding".
    is_finding: bool = True


class InputSpec(BaseModel):
    """How the node turns a radiograph into the model's input tensor.

    Pixels are first mapped to float32 in [0, 1] with bright = dense (MONOCHROME2 orientation):
    for the deblurring model linearly from the stored values' full range ("stored_range"), for
    the classifier through the image's VOI window ("voi_window"). Then (x - mean) / std.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")
    name: str = "image"
    layout: Literal["NCHW"] = "NCHW"
    # 1: the image. 2 or more (deblur models only, "refiners"): the blurred image, the node's
    # deconvolutions with its Wiener λ times each of training.variant_balance_factors, and last
    # the correction it refines (models.deblur.refiner_inputs), stacked in that order; the node
    # computes them first and runs such a model only where it corrects.
    channels: int = Field(1, ge=1, le=8)
    dtype: Literal["float32"] = "float32"
    # classifier_unit: as shown (VOI), then models.intensity.classifier_unit (squash to size²,
    # 0.5-99.5 percentile stretch): the one mapping of training, evaluation and the node.
    # welch_log_spectrum (kernel_magnitude models): not pixels but the normalised Welch log power
    # spectrum of the linear exposure (models.kernel_shape.spectrum_input).
    intensity: Literal["stored_range", "voi_window", "classifier_unit", "welch_log_spectrum"] = (
        "stored_range"
    )
    mean: float = 0.0
    std: float = 1.0
    # Fixed square input (classifier) or None for any size (generator).
    size: int | None = None
    # Height and width must be multiples of this (pixel-unshuffle in the generator).
    multiple_of: int = 1


class TileSpec(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    size: int = Field(512, gt=0)
    overlap: int = Field(32, ge=0)


class IntendedUse(BaseModel):
    """What a classifier is for; the node analyses only images that fit (node/pipeline/scope.py)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    statement: str
    modalities: list[str] = ["CR", "DX"]
    body_parts: list[str] = ["CHEST"]
    view_positions: list[str] = ["AP", "PA"]
    population: str = ""
    age_years: tuple[float, float] | None = None
    pixel_spacing_mm: tuple[float, float] | None = None


#: What the Kermany-trained classifier is for (its training population and imaging).
KERMANY_INTENDED_USE = IntendedUse(
    statement=(
        "Pneumonia vs normal on frontal (AP/PA) chest radiographs of children aged 1 to 5 years "
        "(CR/DX). Not for other body parts, lateral views, adults or other species."
    ),
    modalities=["CR", "DX"],
    body_parts=["CHEST", "THORAX"],
    view_positions=["AP", "PA"],
    population="pediatric, 1-5 years, one hospital (Guangzhou Women and Children's Medical Center)",
    age_years=(0.0, 17.0),
    pixel_spacing_mm=(0.05, 1.0),
)


class ModelManifest(BaseModel):
    """Everything the node needs to know about one exported model."""

    model_config = ConfigDict(frozen=True, extra="forbid", protected_namespaces=())
    name: str
    task: Literal["deblur", "classify", "kernel_magnitude"]
    version: str
    architecture: str
    file: str  # ONNX file name, relative to the manifest's folder
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    device_uid: str = Field(pattern=r"^[0-9]+(\.[0-9]+)*$", max_length=64)
    demonstration_only: bool = True
    description: str = ""
    input: InputSpec
    # Output names in the ONNX graph: deblur -> {"image": ...};
    # classify -> {"probabilities": [N, C], "cam": [N, C, h, w]};
    # kernel_magnitude -> {"magnitude": [N, 1, 64, 64]}.
    outputs: dict[str, str]
    tile: TileSpec | None = None
    labels: list[Label] = []
    # P(finding) from which the finding is reported present: the operating point chosen on the
    # validation split (models/calibrate.py).
    operating_threshold: float = Field(0.5, gt=0, lt=1)
    intended_use: IntendedUse | None = None
    training: dict[str, object] = {}
    metrics: dict[str, object] = {}
    opset: int = 17

    @property
    def display_name(self) -> str:
        return f"{self.name} {self.version}"

    @model_validator(mode="after")
    def _channels_are_said(self) -> ModelManifest:
        """More than one input channel only for a refiner, and each channel beyond the blurred
        image and the correction named by a factor of ``training.variant_balance_factors``."""
        channels = self.input.channels
        if channels > 1 and self.task != "deblur":
            raise ValueError(f"a {self.task} model takes 1 input channel, not {channels}")
        factors = self.training.get("variant_balance_factors", [])
        if not isinstance(factors, list) or not all(
            isinstance(f, (int, float)) and f > 0 for f in factors
        ):
            raise ValueError("training.variant_balance_factors must be a list of positive numbers")
        if channels > 2 and len(factors) != channels - 2:
            raise ValueError(
                f"a refiner of {channels} input channels needs {channels - 2} "
                f"training.variant_balance_factors, not {len(factors)}"
            )
        if channels <= 2 and factors:
            raise ValueError(f"variant_balance_factors given for {channels} input channel(s)")
        return self

    @property
    def variant_balance_factors(self) -> tuple[float, ...]:
        """The Wiener λ factors of a refiner's extra input deconvolutions (empty: none)."""
        factors = self.training.get("variant_balance_factors", [])
        return tuple(float(f) for f in factors) if isinstance(factors, list) else ()


class ManifestError(ValueError):
    """A manifest is missing, malformed, or does not match its model file."""


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def device_uid_for(sha256_hex: str) -> str:
    """A DICOM UID (2.25 form) derived from the weights' hash: new weights, new Device UID."""
    return f"2.25.{uuid.UUID(hex=sha256_hex[:32]).int}"


def load_manifest(path: Path, verify: bool = True) -> tuple[ModelManifest, Path]:
    """Read a manifest (a file, or a folder holding ``manifest.json``); return it and the model path.

    With ``verify`` the ONNX file's sha256 must match, so a swapped file is caught at start.
    """
    mpath = path / MANIFEST_NAME if path.is_dir() else path
    try:
        data = json.loads(mpath.read_text(encoding="utf-8"))
    except FileNotFoundError as e:
        raise ManifestError(f"model manifest not found: {mpath}") from e
    except json.JSONDecodeError as e:
        raise ManifestError(f"model manifest {mpath} is not valid JSON: {e}") from e
    try:
        manifest = ModelManifest.model_validate(data)
    except ValueError as e:
        raise ManifestError(f"model manifest {mpath} is invalid: {e}") from e
    model_path = mpath.parent / manifest.file
    if not model_path.is_file():
        raise ManifestError(f"model file {model_path} named by {mpath} does not exist")
    if verify:
        actual = sha256_of(model_path)
        if actual != manifest.sha256:
            raise ManifestError(
                f"model file {model_path} has sha256 {actual}, manifest {mpath} says {manifest.sha256}"
            )
    return manifest, model_path


def write_manifest(manifest: ModelManifest, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    out = folder / MANIFEST_NAME
    out.write_text(json.dumps(manifest.model_dump(mode="json"), indent=2) + "\n", encoding="utf-8")
    return out
