"""Export the generator and the classifier to ONNX (opset 17), check parity, write manifests.

Each model goes into its own folder as ``model.onnx`` + ``manifest.json`` (see
:mod:`models.manifest`). Parity: ONNX Runtime (CPU, float32) against PyTorch on random inputs of
several shapes; the relative L2 error ``‖ort − torch‖ / ‖torch‖`` of every output must be below
1e-4, else :class:`ParityError` is raised and no manifest is written.

Graph names:

* generator: input ``image`` [N,1,H,W] (N, H, W dynamic; H, W multiples of 4), output
  ``corrected`` [N,1,H,W] (an ONNX output cannot share the input's name; the manifest maps the
  role ``image`` to it: ``outputs = {"image": "corrected"}``);
* classifier: input ``image`` [N,1,S,S] (N dynamic), outputs ``probabilities`` [N,C] and
  ``cam`` [N,C,S/32,S/32].

CLI::

    python -m models.export deblur --checkpoint runs/deblur/psnr_final.pt --out DIR [--metrics M]
    python -m models.export classify --checkpoint runs/classify/best.pt --out DIR [--metrics M]
"""

from __future__ import annotations

import argparse
import json
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import torch
from torch import nn

from models.classifier import CamExport, LogitAverage, build_classifier
from models.manifest import (
    KERMANY_INTENDED_USE,
    CodedConcept,
    InputSpec,
    IntendedUse,
    Label,
    ModelManifest,
    TileSpec,
    device_uid_for,
    sha256_of,
    write_manifest,
)
from models.rrdbnet import (
    CONFIGS,
    SCALE,
    RRDBConfig,
    RRDBNet,
    build_generator,
    fold_residual_scaling,
)

OPSET = 17
MODEL_FILE = "model.onnx"
PARITY_TOLERANCE = 1e-4
#: The class activation map is shown as an 8-bit overlay, where one grey level is 3.9e-3 of its
#: range; an ensemble of float16-stored members reaches 1.6-3.4e-4 on it (0.7.0, docs/models.md),
#: so the map's own bound is 1e-3, a quarter of one displayed level.
CAM_PARITY_TOLERANCE = 1e-3
DEMO_DESCRIPTION = (
    "Demonstration model, not for diagnostic use. Trained briefly on a small public data set; "
    "not validated clinically."
)

#: Pneumonia labels with SNOMED CT codes.
PNEUMONIA_LABELS: list[Label] = [
    Label(
        index=0,
        name="NORMAL",
        code=CodedConcept(value="17621005", scheme="SCT", meaning="Normal"),
        is_finding=False,
    ),
    Label(
        index=1,
        name="PNEUMONIA",
        code=CodedConcept(value="233604007", scheme="SCT", meaning="Pneumonia"),
        is_finding=True,
    ),
]


class ParityError(RuntimeError):
    """ONNX Runtime and PyTorch disagree beyond the tolerance."""


def rel_l2(a: np.ndarray, b: np.ndarray) -> float:
    """‖a − b‖₂ / ‖b‖₂ (b the reference); 0 if both are zero."""
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    den = float(np.linalg.norm(b64))
    num = float(np.linalg.norm(a64 - b64))
    return num / den if den > 0 else num


def _session(path: Path) -> ort.InferenceSession:
    so = ort.SessionOptions()
    so.intra_op_num_threads = 2
    so.log_severity_level = 3
    return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])


def _onnx_export(
    model: nn.Module,
    example: torch.Tensor,
    path: Path,
    output_names: list[str],
    dynamic_axes: dict[str, dict[int, str]],
) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    model.eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer warnings about constant shapes are expected
        torch.onnx.export(
            model,
            (example,),
            str(path),
            input_names=["image"],
            output_names=output_names,
            dynamic_axes=dynamic_axes,
            opset_version=OPSET,
            do_constant_folding=True,
            dynamo=False,
        )


def store_weights_fp16(path: Path, min_elements: int = 1024) -> int:
    """Rewrite ``path`` with its large float32 weights stored as float16, each cast back to
    float32 by a ``Cast`` node (ONNX Runtime folds these when the session starts, so the model
    still computes in float32). Halves the file; the caller checks parity afterwards. Returns the
    number of weights converted."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    model = onnx.load(str(path))
    graph = model.graph
    casts, kept = [], []
    for init in graph.initializer:
        if init.data_type == TensorProto.FLOAT and int(np.prod(init.dims)) >= min_elements:
            half = numpy_helper.from_array(
                numpy_helper.to_array(init).astype(np.float16), f"{init.name}__fp16"
            )
            kept.append(half)
            casts.append(helper.make_node("Cast", [half.name], [init.name], to=TensorProto.FLOAT))
        else:
            kept.append(init)
    del graph.initializer[:]
    graph.initializer.extend(kept)
    nodes = list(graph.node)
    del graph.node[:]
    graph.node.extend([*casts, *nodes])
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return len(casts)


def check_parity(
    model: nn.Module,
    onnx_path: Path,
    shapes: Sequence[tuple[int, int, int, int]],
    output_names: list[str],
    seed: int = 0,
    tolerance: float = PARITY_TOLERANCE,
    tolerances: dict[str, float] | None = None,
) -> dict[str, float]:
    """Worst relative L2 error per output over random inputs of ``shapes``; raises above
    ``tolerance`` (or an output's own in ``tolerances``)."""
    sess = _session(onnx_path)
    gen = torch.Generator().manual_seed(seed)
    worst = dict.fromkeys(output_names, 0.0)
    model.eval()
    for shape in shapes:
        x = torch.rand(shape, generator=gen)
        with torch.no_grad():
            ref = model(x)
        refs = [ref] if isinstance(ref, torch.Tensor) else list(ref)
        outs = sess.run(output_names, {"image": x.numpy()})
        for name, r, o in zip(output_names, refs, outs, strict=True):
            err = rel_l2(np.asarray(o), r.numpy())
            worst[name] = max(worst[name], err)
    bound = {k: (tolerances or {}).get(k, tolerance) for k in worst}
    bad = {k: v for k, v in worst.items() if not v < bound[k]}
    if bad:
        raise ParityError(
            f"ONNX/PyTorch parity failed for {onnx_path}: {bad} (tol {[bound[k] for k in bad]})"
        )
    return worst


def export_deblur(
    model: RRDBNet,
    out_dir: Path,
    *,
    name: str = "sharpray-deblur",
    version: str = "0.1.0",
    config_name: str = "light",
    training: dict[str, Any] | None = None,
    metrics: dict[str, Any] | None = None,
    description: str = DEMO_DESCRIPTION,
    demonstration_only: bool = True,
    tile: TileSpec | None = None,
    parity_shapes: Sequence[tuple[int, int, int, int]] = ((1, 1, 64, 64), (2, 1, 48, 80)),
    intended_use: IntendedUse | None = None,
) -> ModelManifest:
    """Export an RRDBNet generator (1 input channel) or refiner (2: blurred image and the node's
    blind Wiener correction) to ``out_dir/model.onnx`` with a checked manifest."""
    model = model.float().cpu().eval()
    channels = model.in_channels
    onnx_path = out_dir / MODEL_FILE
    _onnx_export(
        fold_residual_scaling(model),  # the same function; parity is checked against ``model``
        torch.rand(1, channels, 64, 64),
        onnx_path,
        ["corrected"],
        {"image": {0: "N", 2: "H", 3: "W"}, "corrected": {0: "N", 2: "H", 3: "W"}},
    )
    shapes = [(n, channels, h, w) for n, _, h, w in parity_shapes]
    parity = check_parity(model, onnx_path, shapes, ["corrected"])
    cfg = model.config
    sha = sha256_of(onnx_path)
    role = (
        "global residual"
        if channels == 1
        else "refiner of the blind Wiener correction: inputs blurred image + correction, "
        "output = correction + residual"
        if channels == 2
        else "refiner of the blind Wiener correction: inputs blurred image + "
        f"{channels - 2} deconvolutions at other Wiener λ + correction, "
        "output = correction + residual"
    )
    manifest = ModelManifest(
        name=name,
        task="deblur",
        version=version,
        architecture=(
            f"RRDBNet ({config_name}: {cfg.num_feat} features, {cfg.num_block} RRDB blocks, "
            f"growth {cfg.growth}), pixel-unshuffle x4 / pixel-shuffle x4, {role}"
        ),
        file=MODEL_FILE,
        sha256=sha,
        device_uid=device_uid_for(sha),
        demonstration_only=demonstration_only,
        description=description,
        input=InputSpec(
            intensity="stored_range",
            mean=0.0,
            std=1.0,
            size=None,
            multiple_of=4,
            channels=channels,
        ),
        outputs={"image": "corrected"},
        tile=tile or TileSpec(size=512, overlap=32),
        labels=[],
        intended_use=intended_use,
        training=training or {},
        metrics={**(metrics or {}), "onnx_parity_rel_l2": parity["corrected"]},
        opset=OPSET,
    )
    write_manifest(manifest, out_dir)
    return manifest


def export_classify(
    model: nn.Module,
    out_dir: Path,
    *,
    size: int,
    mean: float,
    std: float,
    architecture: str,
    name: str = "sharpray-pneumonia",
    version: str = "0.1.0",
    labels: list[Label] | None = None,
    training: dict[str, Any] | None = None,
    metrics: dict[str, Any] | None = None,
    description: str = DEMO_DESCRIPTION,
    demonstration_only: bool = True,
    temperature: float = 1.0,
    threshold: float = 0.5,
    intensity: str = "voi_window",
    intended_use: IntendedUse | None = None,
    weights_fp16: bool = False,
) -> ModelManifest:
    """Export a GAP→linear classifier with its CAM output to ``out_dir/model.onnx`` + manifest.

    ``weights_fp16``: store the weights as float16 (:func:`store_weights_fp16`; half the file,
    e.g. for an ensemble of float16-trained members), parity checked on the stored file."""
    wrapper = CamExport(model.float().cpu().eval(), temperature).eval()
    onnx_path = out_dir / MODEL_FILE
    outputs = ["probabilities", "cam"]
    _onnx_export(
        wrapper,
        torch.rand(1, 1, size, size),
        onnx_path,
        outputs,
        {"image": {0: "N"}, "probabilities": {0: "N"}, "cam": {0: "N"}},
    )
    if weights_fp16:
        store_weights_fp16(onnx_path)
    parity = check_parity(
        wrapper,
        onnx_path,
        [(1, 1, size, size), (2, 1, size, size)],
        outputs,
        tolerances={"cam": CAM_PARITY_TOLERANCE},
    )
    sha = sha256_of(onnx_path)
    manifest = ModelManifest(
        name=name,
        task="classify",
        version=version,
        architecture=architecture,
        file=MODEL_FILE,
        sha256=sha,
        device_uid=device_uid_for(sha),
        demonstration_only=demonstration_only,
        description=description,
        input=InputSpec(
            intensity=intensity,
            mean=mean,
            std=std,
            size=size,
            multiple_of=1,
        ),
        operating_threshold=threshold,
        intended_use=intended_use,
        outputs={"probabilities": "probabilities", "cam": "cam"},
        tile=None,
        labels=labels or PNEUMONIA_LABELS,
        training=training or {},
        metrics={
            **(metrics or {}),
            "onnx_parity_rel_l2": {k: float(v) for k, v in parity.items()},
            **({"onnx_weights": "float16, cast to float32 at load"} if weights_fp16 else {}),
        },
        opset=OPSET,
    )
    write_manifest(manifest, out_dir)
    return manifest


def load_generator_checkpoint(path: Path) -> tuple[RRDBNet, str, dict[str, Any]]:
    """A generator checkpoint written by :mod:`models.train_deblur` → (model, config name, dict)."""
    ck: dict[str, Any] = torch.load(path, map_location="cpu", weights_only=False)
    config = str(ck.get("config", "light"))
    values = ck.get("config_values")
    cfg = RRDBConfig(**values) if values else CONFIGS[config]
    model = build_generator(cfg, in_channels=int(ck.get("in_channels", 1)))
    model.load_state_dict(ck["state_dict"])
    return model, config, ck


def generator_from_onnx(path: Path) -> RRDBNet:
    """Rebuild the PyTorch generator from an exported ONNX file's weights (its initializers carry
    the state dict's names), in the form it was exported in (plain or with folded residual
    scaling). For re-exporting or quantizing a model whose checkpoint is not at hand."""
    import onnx
    from onnx import numpy_helper

    graph = onnx.load(str(path)).graph
    arrays = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    # the exporter shares identical initializers (zero biases, every RRDB's 0.2·I) and names the
    # other users through Identity nodes
    for node in graph.node:
        if node.op_type == "Identity" and node.input[0] in arrays:
            arrays.setdefault(node.output[0], arrays[node.input[0]])
    weights = {
        k: torch.from_numpy(v.copy()) for k, v in arrays.items() if k.startswith(("conv_", "body."))
    }
    blocks = {int(k.split(".")[1]) for k in weights if k.startswith("body.")}
    first = weights["conv_first.weight"]
    model = RRDBNet(
        num_feat=int(first.shape[0]),
        num_block=len(blocks),
        growth=int(weights["body.0.rdb1.conv1.weight"].shape[0]),
        in_channels=int(first.shape[1]) // (SCALE * SCALE),
    )
    if any(".out_scale." in k for k in weights):
        model = fold_residual_scaling(model)
    model.load_state_dict(weights)
    return model.eval()


def load_classifier_checkpoint(path: Path) -> tuple[nn.Module, dict[str, Any]]:
    """A classifier checkpoint written by :mod:`models.train_classifier` → (model, dict); one
    written by :mod:`models.ensemble_classifier` (``members``) → a :class:`LogitAverage`."""
    ck: dict[str, Any] = torch.load(path, map_location="cpu", weights_only=False)

    def network(state: dict[str, Any]) -> nn.Module:
        m = build_classifier(str(ck["arch"]), int(ck.get("num_classes", 2)))
        m.load_state_dict({k: v.float() for k, v in state.items()})
        return m

    if "members" in ck:
        return LogitAverage([network(m["state_dict"]) for m in ck["members"]]), ck
    return network(ck["state_dict"]), ck


def _read_json(path: Path | None) -> dict[str, Any] | None:
    if path is None:
        return None
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Export SharpRay models to ONNX with manifests.")
    sub = ap.add_subparsers(dest="task", required=True)
    for task in ("deblur", "classify"):
        p = sub.add_parser(task)
        p.add_argument("--checkpoint", type=Path, required=True)
        p.add_argument("--out", type=Path, required=True, help="folder for model.onnx+manifest")
        p.add_argument("--name", default=None)
        p.add_argument("--version", default="0.1.0")
        p.add_argument("--metrics", type=Path, default=None, help="JSON file replacing metrics")
        p.add_argument("--training", type=Path, default=None, help="JSON file replacing training")
    sub.choices["classify"].add_argument(
        "--weights-fp16",
        action="store_true",
        help="store the weights as float16 (half the file; computed in float32, parity checked)",
    )
    sub.choices["deblur"].add_argument(
        "--pixel-spacing-mm",
        type=float,
        nargs=2,
        default=None,
        metavar=("MIN", "MAX"),
        help="pixel sizes the model is validated for; elsewhere the node does not run it",
    )
    args = ap.parse_args(argv)
    torch.set_num_threads(2)
    metrics_override = _read_json(args.metrics)
    training_override = _read_json(args.training)
    if args.task == "deblur":
        gmodel, config, ck = load_generator_checkpoint(args.checkpoint)
        m = export_deblur(
            gmodel,
            args.out,
            name=args.name or "sharpray-deblur",
            version=args.version,
            config_name=config,
            training=training_override or ck.get("training", {}),
            metrics=metrics_override or ck.get("metrics", {}),
            intended_use=(
                None
                if args.pixel_spacing_mm is None
                else IntendedUse(
                    statement=(
                        "Refines the blind Wiener correction of motion-blurred radiographs with "
                        f"pixels of {args.pixel_spacing_mm[0]:g}-{args.pixel_spacing_mm[1]:g} mm; "
                        "elsewhere the Wiener correction is returned alone."
                    ),
                    body_parts=[],
                    view_positions=[],
                    pixel_spacing_mm=tuple(args.pixel_spacing_mm),
                )
            ),
        )
    else:
        cmodel, ck = load_classifier_checkpoint(args.checkpoint)
        m = export_classify(
            cmodel,
            args.out,
            size=int(ck["size"]),
            mean=float(ck["mean"]),
            std=float(ck["std"]),
            architecture=str(ck.get("architecture", ck["arch"])),
            name=args.name or "sharpray-pneumonia",
            version=args.version,
            training=training_override or ck.get("training", {}),
            metrics=metrics_override or ck.get("metrics", {}),
            temperature=float(ck.get("temperature", 1.0)),
            threshold=float(ck.get("threshold", 0.5)),
            intensity="classifier_unit" if "intensity" in ck.get("training", {}) else "voi_window",
            intended_use=KERMANY_INTENDED_USE if "intensity" in ck.get("training", {}) else None,
            weights_fp16=args.weights_fp16,
        )
    print(json.dumps({"out": str(args.out), "sha256": m.sha256, "metrics": m.metrics}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
