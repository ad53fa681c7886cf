"""ONNX Runtime sessions built from model manifests; execution-provider choice with a loud fallback.

The node runs models with ONNX Runtime only (never torch). Providers: CUDA and TensorRT where the
installed onnxruntime offers them and the settings allow, the CPU otherwise. After a session is
made we check which provider it really uses and log a warning when a GPU was asked for and the
CPU answers (a silent CPU fallback is a 100x slowdown nobody sees).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime as ort
from skimage.transform import resize

from models.kernel_shape import magnitude_from_session
from models.manifest import ModelManifest, load_manifest
from models.tiling import run_tiled

log = logging.getLogger(__name__)

GPU_PROVIDERS = {"cuda": "CUDAExecutionProvider", "tensorrt": "TensorrtExecutionProvider"}


class ModelLoadError(RuntimeError):
    """A model could not be loaded; the message names the model and the reason."""


def choose_providers(preference: str) -> list[str]:
    available = ort.get_available_providers()
    if preference == "cpu":
        return ["CPUExecutionProvider"]
    wanted: list[str] = []
    if preference in ("auto", "tensorrt") and "TensorrtExecutionProvider" in available:
        wanted.append("TensorrtExecutionProvider")
    if preference in ("auto", "tensorrt", "cuda") and "CUDAExecutionProvider" in available:
        wanted.append("CUDAExecutionProvider")
    if preference in GPU_PROVIDERS and GPU_PROVIDERS[preference] not in available:
        log.warning(
            "execution provider %s asked for but this onnxruntime offers only %s: using the CPU",
            GPU_PROVIDERS[preference],
            ", ".join(available),
        )
    return [*wanted, "CPUExecutionProvider"]


@dataclass
class LoadedModel:
    manifest: ModelManifest
    path: Path
    session: ort.InferenceSession

    @property
    def provider(self) -> str:
        return str(self.session.get_providers()[0])


def load_model(location: Path, providers: str, threads: int, verify: bool) -> LoadedModel:
    try:
        manifest, path = load_manifest(location, verify=verify)
    except ValueError as e:
        raise ModelLoadError(str(e)) from e
    opts = ort.SessionOptions()
    if threads:
        opts.intra_op_num_threads = threads
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    chosen = choose_providers(providers)
    try:
        session = ort.InferenceSession(str(path), sess_options=opts, providers=chosen)
    except Exception as e:
        raise ModelLoadError(f"model {manifest.name} ({path}) cannot be loaded: {e}") from e
    used = session.get_providers()
    if chosen[0] != "CPUExecutionProvider" and used[0] == "CPUExecutionProvider":
        log.warning(
            "MODEL %s RUNS ON THE CPU although %s was asked for: check CUDA/cuDNN on this host",
            manifest.name,
            chosen[0],
        )
    log.info(
        "model %s %s loaded (%s) on %s", manifest.name, manifest.version, manifest.task, used[0]
    )
    return LoadedModel(manifest, path, session)


class Deblurrer:
    """The motion-blur correction: [H, W] float32 in [0, 1] -> same, tiled with overlap.

    A model of two input channels is a **refiner**: it takes the blurred image and the node's
    blind Wiener correction of it (``correction``) and returns the refined correction.
    """

    def __init__(self, model: LoadedModel, tile: int | None = None, batch: int = 1) -> None:
        if model.manifest.task != "deblur":
            raise ModelLoadError(
                f"model {model.manifest.name} is a {model.manifest.task} model, not deblur"
            )
        self.model = model
        m = model.manifest
        self.tile = tile or (m.tile.size if m.tile else 512)
        self.overlap = m.tile.overlap if m.tile else 32
        self.batch = batch
        self.input_name = model.session.get_inputs()[0].name
        self.output_name = m.outputs.get("image", model.session.get_outputs()[0].name)
        self.channels = m.input.channels

    @property
    def refines_correction(self) -> bool:
        return self.channels >= 2

    @property
    def variant_balance_factors(self) -> tuple[float, ...]:
        """The Wiener λ factors of the deconvolutions a refiner is given beside the correction."""
        return self.model.manifest.variant_balance_factors

    @property
    def refines_node_correction(self) -> bool:
        """A refiner of the node's correction as shipped (the kernel shape step and the
        Richardson-Lucy fallback), not of the Wiener filter alone: its manifest's
        ``training.refines`` says ``node_correction`` (``models.refiner_bank --kernel-shape``)."""
        return self.refines_correction and (
            self.model.manifest.training.get("refines") == "node_correction"
        )

    def _run(self, batch: np.ndarray) -> np.ndarray:
        m = self.model.manifest.input
        x = ((batch - m.mean) / m.std).astype(np.float32)
        (y,) = self.model.session.run([self.output_name], {self.input_name: x})
        return np.asarray(y, dtype=np.float32) * m.std + m.mean

    def __call__(
        self,
        unit: np.ndarray,
        correction: np.ndarray | None = None,
        variants: Sequence[np.ndarray] = (),
    ) -> np.ndarray:
        """The generator's output on ``unit``; a refiner's on ``unit``, the ``variants``
        (deconvolutions at its :attr:`variant_balance_factors`) and the ``correction``."""
        image = unit.astype(np.float32)
        if self.refines_correction:
            if correction is None or correction.shape != unit.shape:
                raise ValueError("a refiner needs the correction of the same shape as the image")
            if len(variants) != self.channels - 2 or any(v.shape != unit.shape for v in variants):
                raise ValueError(
                    f"this refiner needs {self.channels - 2} deconvolutions beside the "
                    "correction, of the image's shape"
                )
            image = np.stack([image, *(v.astype(np.float32) for v in variants), correction])
            image = image.astype(np.float32)
        out = run_tiled(
            image,
            self._run,
            tile=self.tile,
            overlap=self.overlap,
            multiple_of=max(4, self.model.manifest.input.multiple_of),
            batch_size=self.batch,
        )
        return np.clip(out, 0.0, 1.0)


class KernelMagnitude:
    """The learned kernel magnitude of the shape step: the 64² Welch log spectrum of the blurred
    exposure (``models.kernel_shape.spectrum_input``) -> |K| on the same grid, centred."""

    def __init__(self, model: LoadedModel) -> None:
        if model.manifest.task != "kernel_magnitude":
            raise ModelLoadError(
                f"model {model.manifest.name} is a {model.manifest.task} model, "
                "not kernel_magnitude"
            )
        self.model = model
        self._estimate = magnitude_from_session(model.session)

    def __call__(self, spectrum: np.ndarray) -> np.ndarray:
        return self._estimate(spectrum)


@dataclass(frozen=True)
class Classification:
    probabilities: np.ndarray  # [C]
    cams: np.ndarray  # [C, h, w], raw class-activation maps (>= 0)

    def heatmap(self, class_index: int, shape: tuple[int, int]) -> np.ndarray:
        """The CAM of one class resized to ``shape`` and scaled to [0, 1]."""
        cam = np.maximum(self.cams[class_index].astype(np.float32), 0.0)
        peak = float(cam.max())
        cam = cam / peak if peak > 0 else cam
        big = np.asarray(resize(cam, shape, order=1, preserve_range=True), dtype=np.float32)
        out: np.ndarray = np.clip(big, 0.0, 1.0)
        return out


class Classifier:
    def __init__(self, model: LoadedModel) -> None:
        if model.manifest.task != "classify":
            raise ModelLoadError(
                f"model {model.manifest.name} is a {model.manifest.task} model, not classify"
            )
        if not model.manifest.labels:
            raise ModelLoadError(f"classifier {model.manifest.name} has no labels in its manifest")
        self.model = model
        self.input_name = model.session.get_inputs()[0].name
        outs = model.manifest.outputs
        self.prob_name = outs.get("probabilities", "probabilities")
        self.cam_name = outs.get("cam", "cam")

    def __call__(self, model_input: np.ndarray) -> Classification:
        probs, cams = self.model.session.run(
            [self.prob_name, self.cam_name], {self.input_name: model_input}
        )
        return Classification(np.asarray(probs)[0], np.asarray(cams)[0])
