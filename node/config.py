"""One typed settings model: ``config.yaml`` overlaid by ``SHARPRAY_*`` environment variables.

Built once at start (``load_settings``) and passed down; nothing reads configuration globally.
An environment variable names a key path with ``__`` between levels, e.g.
``SHARPRAY_NODE__AE_TITLE=SHARPRAY2`` or ``SHARPRAY_STORAGE__DATABASE_URL=postgresql://...``;
its value is parsed as YAML (so numbers, booleans and lists work).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from node.result_selection import RESULT_KINDS, ResultSelection

ENV_PREFIX = "SHARPRAY_"
PACKAGE_ROOT = Path(__file__).resolve().parent.parent
BUNDLED_MODELS = PACKAGE_ROOT / "models" / "weights"
AE_RE = re.compile(r"^[\x20-\x5b\x5d-\x7e]{1,16}$")  # printable, no backslash, 1..16 chars


class ConfigError(ValueError):
    """The configuration is invalid; the message names the key."""


def _check_ae(v: object) -> str:
    v = str(v)
    if not AE_RE.match(v) or not v.strip():
        raise ValueError("must be 1-16 printable characters without backslash")
    return v.strip()


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ScpTlsSettings(Strict):
    """DICOM TLS for the SCP (PS3.15 Annex B, BCP 195 style: TLS 1.2 or newer)."""

    enabled: bool = False
    certificate: Path | None = None  # PEM certificate of this node
    private_key: Path | None = None  # PEM private key (keep it readable by the node only)
    ca_certificates: Path | None = None  # PEM bundle of CAs whose client certificates we trust
    require_client_certificate: bool = False

    @model_validator(mode="after")
    def _complete(self) -> ScpTlsSettings:
        if self.enabled and (self.certificate is None or self.private_key is None):
            raise ValueError("tls.enabled needs tls.certificate and tls.private_key")
        if self.require_client_certificate and self.ca_certificates is None:
            raise ValueError("tls.require_client_certificate needs tls.ca_certificates")
        return self


class NodeSettings(Strict):
    ae_title: str = "SHARPRAY"
    bind: str = "0.0.0.0"
    dimse_port: int = Field(11112, ge=0, le=65535)
    http_bind: str = "127.0.0.1"
    http_port: int = Field(8080, ge=0, le=65535)
    # 0 = unlimited receive PDU (several times faster for large images than pynetdicom's 16 KB)
    max_pdu: int = Field(0, ge=0)
    # Longest PDU read from any peer, checked before any memory is set aside; a longer one
    # closes the connection (a real peer sends PDUs of at most its negotiated size, << this).
    pdu_length_cap_mb: int = Field(256, ge=1, le=4096)
    # Reject an association whose called AE title is not ae_title (A-ASSOCIATE-RJ reason 7).
    check_called_ae: bool = True
    max_associations: int = Field(16, ge=1)  # established associations at once
    # Connections accepted but not yet associated (TLS handshake, A-ASSOCIATE-RQ): in total,
    # per peer address, and how long each may take before it is closed (node/receive/guard.py).
    max_pending_connections: int = Field(128, ge=1)
    max_pending_per_peer: int = Field(16, ge=1)
    association_timeout_s: float = Field(10.0, gt=0)
    network_timeout_s: float = Field(60.0, gt=0)
    # Calling AE titles allowed to store; empty = anyone.
    allowed_calling_aes: list[str] = []
    tls: ScpTlsSettings = ScpTlsSettings()

    @field_validator("ae_title", mode="before")
    @classmethod
    def _ae(cls, v: object) -> str:
        return _check_ae(v)


class StorageSettings(Strict):
    folder: Path = Path("var/store")
    database_url: str = "sqlite:///var/sharpray.db"
    # Below this much free disk the receivers refuse new data (DIMSE 0xA700, HTTP 503).
    min_free_mb: int = Field(500, ge=0)
    # Write received files with O_DIRECT (falls back to buffered writes where unsupported).
    direct_io: bool = True


def _bundled(v: object) -> object:
    """A bare name of a bundled model folder (``deblur-demo-int8``) means that folder."""
    if isinstance(v, str) and "/" not in v and not Path(v).exists():
        if (BUNDLED_MODELS / v / "manifest.json").is_file():
            return BUNDLED_MODELS / v
    return v


class ModelSettings(Strict):
    # A folder holding manifest.json + the ONNX file (or the manifest file itself).
    # deblur None (null or "wiener"): the blind Wiener correction (node/pipeline/correct.py), no
    # learned weights.
    deblur: Path | None = None
    classify: Path = BUNDLED_MODELS / "classify-demo"
    # The learned kernel magnitude of the curved-motion shape step of the blind Wiener correction
    # (models/kernel_shape.py; the bundled one by default); null (or "off"): the straight-motion
    # kernel only.
    kernel_shape: Path | None = BUNDLED_MODELS / "kernel-magnitude"
    # The native-pixel kernel magnitude of the same step for frames with pixels finer than 0.4 mm
    # (detector scale; used only with kernel_shape; on by default since sharpray-blind-wiener
    # 0.34.0, in quiet frames only as blur_gate.shape_detector_* say: in noisy ones it lost on
    # the test split's real frames, docs/models.md); null (or "off"): those keep the straight
    # kernel (0.31.0).
    kernel_shape_detector: Path | None = BUNDLED_MODELS / "kernel-magnitude-detector"
    # A second kernel magnitude for the same step at ≈0.6 mm (the fifth network read eight ways,
    # τ models.kernel_shape.SECOND_THRESHOLDS): where the first read a frame, the correction is
    # the mean of the one with each (sharpray-blind-wiener 0.14.0; the twenty-eighth round);
    # used only with kernel_shape and the blind Wiener correction; null (or "off"): the first
    # alone (0.12.0).
    kernel_shape_second: Path | None = BUNDLED_MODELS / "kernel-magnitude-second"
    # A second native-pixel kernel magnitude (detector scale, pixels finer than 0.4 mm): where
    # kernel_shape_detector read a frame, the correction is the mean of the one with each (the
    # sixty-third and sixty-fourth rounds); used only with kernel_shape_detector and the blind
    # Wiener correction; null (or "off"): the first alone.
    kernel_shape_detector_second: Path | None = None

    @field_validator(
        "kernel_shape",
        "kernel_shape_detector",
        "kernel_shape_second",
        "kernel_shape_detector_second",
        mode="before",
    )
    @classmethod
    def _kernel_shape(cls, v: object) -> object:
        # YAML reads a bare off as false
        return None if v is None or v is False or v == "off" else _bundled(v)

    @field_validator("deblur", mode="before")
    @classmethod
    def _default_deblur(cls, v: object) -> object:
        return None if v is None or v == "wiener" else _bundled(v)

    @field_validator("classify", mode="before")
    @classmethod
    def _default_classify(cls, v: object) -> object:
        return BUNDLED_MODELS / "classify-demo" if v is None else _bundled(v)

    # "auto": CUDA/TensorRT when onnxruntime offers them, CPU otherwise. Or an explicit list.
    providers: Literal["auto", "cpu", "cuda", "tensorrt"] = "auto"
    intra_op_threads: int = Field(0, ge=0)  # 0 = ONNX Runtime's default (all cores)
    deblur_tile: int | None = Field(None, gt=0)  # override the manifest's tile size
    deblur_batch: int = Field(1, ge=1)  # tiles per inference call (raise it on GPU hosts)
    verify_sha256: bool = True


class WorkerSettings(Strict):
    count: int = Field(1, ge=0)  # processing workers in this process
    dispatchers: int = Field(1, ge=0)
    lease_s: float = Field(600.0, gt=0)
    poll_s: float = Field(0.5, gt=0)
    max_attempts: int = Field(3, ge=1)


class DispatchSettings(Strict):
    max_attempts: int = Field(10, ge=1)
    backoff_initial_s: float = Field(5.0, ge=0)
    backoff_factor: float = Field(2.0, ge=1)
    backoff_max_s: float = Field(600.0, ge=0)
    timeout_s: float = Field(30.0, gt=0)
    max_pdu: int = Field(0, ge=0)


class TlsSettings(Strict):
    """TLS for a DICOM association (PS3.15 B.1); off unless ``enabled``."""

    enabled: bool = False
    ca_file: Path | None = None  # trust these CAs for the peer's certificate; None = system CAs
    cert_file: Path | None = None  # our client certificate (mutual TLS), PEM
    key_file: Path | None = None  # its private key, PEM
    check_hostname: bool = True  # the peer's certificate must name the host we connect to


class DimseDestination(Strict):
    """A DICOM peer that receives by C-STORE."""

    type: Literal["dimse"] = "dimse"
    ae_title: str
    host: str
    port: int = Field(ge=1, le=65535)
    calling_ae_title: str | None = None  # default: node.ae_title
    tls: TlsSettings = TlsSettings()

    @field_validator("ae_title", mode="before")
    @classmethod
    def _ae(cls, v: object) -> str:
        return _check_ae(v)

    @field_validator("calling_ae_title", mode="before")
    @classmethod
    def _calling_ae(cls, v: object) -> str | None:
        return None if v is None else _check_ae(v)

    def describe(self) -> str:
        return f"{self.ae_title}@{self.host}:{self.port}" + (" (TLS)" if self.tls.enabled else "")


class DicomwebAuth(Strict):
    """How to authenticate to a DICOMweb server. Secrets come from the environment, never the file."""

    type: Literal["none", "basic", "bearer"] = "none"
    username: str | None = None  # basic: the user name
    password_env: str | None = None  # basic: environment variable holding the password
    token_env: str | None = None  # bearer: environment variable holding the token

    @model_validator(mode="after")
    def _complete(self) -> DicomwebAuth:
        if self.type == "basic" and not (self.username and self.password_env):
            raise ValueError("basic auth needs username and password_env")
        if self.type == "bearer" and not self.token_env:
            raise ValueError("bearer auth needs token_env")
        return self


class DicomwebDestination(Strict):
    """A DICOMweb server that receives by STOW-RS (POST {url}/studies)."""

    type: Literal["dicomweb"]
    url: str  # the service root, e.g. https://pacs.example/dicom-web
    auth: DicomwebAuth = DicomwebAuth()
    ca_file: Path | None = None  # trust these CAs for https; None = system CAs
    timeout_s: float | None = Field(None, gt=0)  # None = dispatch.timeout_s

    @field_validator("url")
    @classmethod
    def _url(cls, v: str) -> str:
        if not re.match(r"^https?://[^/\s]+", v):
            raise ValueError("must be an http:// or https:// URL")
        return v.rstrip("/")

    def describe(self) -> str:
        return f"STOW-RS {self.url}"


class ReturnToSenderDestination(Strict):
    """The modality that sent the source image: its calling AE title, at the host the association
    came from, on ``port`` (the association's own source port is ephemeral)."""

    type: Literal["return_to_sender"]
    port: int = Field(104, ge=1, le=65535)  # the senders' C-STORE SCP port
    ports: dict[str, int] = {}  # calling AE title -> its SCP port, where it differs from ``port``
    calling_ae_title: str | None = None  # default: node.ae_title
    tls: TlsSettings = TlsSettings()

    def describe(self) -> str:
        return f"return to sender (port {self.port})"


Destination = Annotated[
    DimseDestination | DicomwebDestination | ReturnToSenderDestination,
    Field(discriminator="type"),
]


class ResultSettings(ResultSelection):
    """The global default selection of result objects (corrected_sc, overlay_sc, gsps, seg,
    report_sr: see ResultSelection) and how every result object is labelled."""

    series_number_sc: int = Field(9001, ge=0)
    series_number_sr: int = Field(9002, ge=0)
    series_number_overlay: int = Field(9003, ge=0)
    series_number_gsps: int = Field(9004, ge=0)
    series_number_seg: int = Field(9005, ge=0)
    manufacturer: str = "SharpRay"
    institution: str | None = None
    device_serial_number: str = Field("SHARPRAY-1", min_length=1, max_length=64)
    # Hot regions (GSPS outlines, SR polylines): heatmap iso-level, most regions per image.
    region_threshold: float = Field(0.5, gt=0.0, lt=1.0)
    max_regions: int = Field(5, ge=1, le=50)
    # The SEG: "binary" = the hot regions (>= region_threshold; OHIF shows it), "fractional" =
    # the whole heatmap in 255 steps (OHIF v3 cannot show it)
    seg_type: Literal["binary", "fractional"] = "binary"
    # the SEG states the image's own axes as its plane orientation (OHIF v3 needs it to overlay a
    # SEG on a radiograph, which has no Frame of Reference)
    seg_image_axes: bool = True


# Result objects a pipeline can build: RESULT_KINDS (sc, overlay, gsps, seg, sr), from
# node/result_selection.py (node/pipeline/outputs.py builds them).


class PipelineSettings(Strict):
    """A named pipeline: which result objects to produce for each radiograph."""

    results: list[str] = ["sc", "sr"]
    # Motion correction: always | when_blurred (the blur gate's decision is not "sharp") | never.
    # An uncorrected image is classified as received and gets no corrected series ("sc").
    correct: Literal["always", "when_blurred", "never"] = "always"

    @field_validator("results")
    @classmethod
    def _kinds(cls, v: list[str]) -> list[str]:
        if not v:
            raise ValueError("a pipeline must produce at least one result")
        bad = [k for k in v if k not in RESULT_KINDS]
        if bad:
            raise ValueError(f"unknown result kind(s) {bad}; known: {list(RESULT_KINDS)}")
        return list(dict.fromkeys(v))


class BlurGateSettings(Strict):
    """The blur gate (node/pipeline/blur_gate.py): motion estimated first, in mm, before correction.

    The same estimate drives the correction (Wiener deconvolution in linear exposure with the
    estimated kernel, ``wiener_balance`` / ``wiener_power``, then ``richardson_lucy_steps``
    Richardson–Lucy steps; see models/deconvolve.py).
    """

    enabled: bool = True
    blurred_from_mm: float = Field(1.0, gt=0)  # estimated motion from which an image is "blurred"
    severe_from_mm: float = Field(3.0, gt=0)  # ... and from which it is "severe"
    min_specificity: float = Field(0.1, ge=0, lt=1)  # below: no motion found, "sharp"
    min_confidence: float = Field(0.45, ge=0, lt=1)  # ... and below this fit either
    # ... unless the fit is at least this strong and the specificity at least the next; null: off
    strong_fit_confidence: float | None = Field(0.65, ge=0, lt=1)
    strong_fit_min_specificity: float = Field(0.05, ge=0, lt=1)
    # Motion found with a fit at least this strong and this specific is "blurred" from this
    # length (mm) on, a little under blurred_from_mm: real 1 mm motion whose first dip is faint
    # is estimated 0.85-0.95 mm (docs/models.md, forty-second round); null: off (0.25.0)
    strong_fit_blurred_from_mm: float | None = Field(0.8, gt=0)
    strong_fit_blurred_confidence: float = Field(0.7, ge=0, lt=1)
    strong_fit_blurred_specificity: float = Field(0.15, ge=0, lt=1)
    max_motion_mm: float = Field(8.0, gt=0, le=50)  # longest motion searched
    # Where the header gives no pixel spacing: this value, or null (default) to derive it from the
    # image size, assumed_field_mm over the longer side, kept within 0.1-0.7 mm (docs/models.md)
    assumed_pixel_spacing_mm: float | None = Field(None, ge=0.02, le=2.0)
    assumed_field_mm: float = Field(430.0, gt=0, le=1000)  # long side of the field then assumed
    # regularisation of the deconvolution (at 1e4 quanta/px of noise)
    wiener_balance: float = Field(0.1, gt=0)
    # ... scaled to the noise measured in each image, (1e4 / quanta) ** exponent, within min-max
    wiener_balance_follows_noise: bool = True
    wiener_balance_exponent: float = Field(0.7, ge=0, le=2)
    # the noise measured against the mean exposure of the windows it is read in (a large
    # frame's centre); false: the whole frame's mean, as up to 0.10.0 (docs/models.md)
    noise_measured_where_read: bool = False
    # ... times (estimated motion px / 10) ** -exponent: more for a short motion, less for a long
    # one (docs/models.md, fourteenth round); 0: the noise alone
    wiener_balance_length_exponent: float = Field(0.0, ge=0, le=2)
    wiener_balance_min: float = Field(0.01, gt=0)
    wiener_balance_max: float = Field(0.4, gt=0)
    # ... at least floor * (motion px / 10) ** 2 * ((1 - fit confidence) / 0.2) ** 3: a long motion
    # the straight kernel fits poorly (a curved path) is regularised more; null: no such floor
    wiener_balance_mismatch_floor: float | None = Field(None, gt=0, le=1)
    # ... at least wiener_balance where the pixels are finer than 0.4 mm (the straight kernel) and
    # the blurred frame's spectrum follows the estimated kernel's less than this (a correlation,
    # models.deblur.kernel_consistency) and the Wiener filter is kept, not the Richardson-Lucy
    # fallback (docs/models.md, thirty-fourth and thirty-fifth rounds); null: no such check
    kernel_consistency_min: float | None = Field(None, gt=-1, lt=1)
    # ... only in frames whose measured noise is at least this many quanta per pixel (frames
    # without added noise mostly read 10^6 and more, Poisson 10^5 at most about 3 * 10^5; the
    # forty-third and forty-fourth rounds, docs/models.md: missed, off); null: in every frame
    kernel_consistency_min_quanta: float | None = Field(None, gt=0)
    # the native-pixel network of models.kernel_shape_detector reads a frame finer than 0.4 mm
    # only where its measured noise is at least this many quanta per pixel (quiet frames: it
    # gained on real frames without added noise and lost on them with it; the forty-eighth
    # round, docs/models.md; 5e5 since the forty-ninth: noisy frames read at most 3.5e5); null:
    # in every frame
    shape_detector_min_quanta: float | None = Field(5.0e5, gt=0)
    # ... and a kernel it retrieved replaces the straight one only where the frame's spectrum
    # follows the straight kernel less than this (a correlation, models.deblur.
    # kernel_consistency: a straight path it misread as curved follows it closely); null:
    # wherever the network says curved
    shape_detector_max_consistency: float | None = Field(None, gt=-1, lt=1)
    # ... and a kernel it retrieved replaces the straight one only where the straight fit's
    # specificity (how much better its length fits than 0.6x and 1.5x it: a straight path's
    # periodic dips) is under this (the forty-ninth round, docs/models.md); null: whatever the fit
    shape_detector_max_specificity: float | None = Field(0.177, gt=0)
    # ... and where it keeps the straight kernel there, the Wiener λ halved as for any kernel
    # it read (wiener_balance_checked_factor); false (since 0.34.0): as if it had not read it
    shape_detector_kept_halved: bool = False
    # ... and where the retrieved kernel's Wiener result rings (the Richardson-Lucy fallback:
    # collimation, markers), the frame corrected as without the network (the eighteenth round);
    # false: Richardson-Lucy with the retrieved kernel, as at 0.4 mm and coarser (the fiftieth
    # round, docs/models.md)
    shape_detector_fallback_unshaped: bool = True
    # ... except where the retrieved kernel's fit (its magnitude's error against the network's)
    # is under this: Richardson-Lucy with it there (the fifty-first round, docs/models.md);
    # null: nowhere
    shape_detector_fallback_max_fit: float | None = Field(None, gt=0)
    # ... and where it corrects as without the network and the straight kernel rings too, the
    # Richardson-Lucy fallback with the mean of the straight and the retrieved kernel (the
    # sixty-fifth round, docs/models.md); false: with the straight kernel
    shape_detector_fallback_kernel_mean: bool = False
    # where the Richardson-Lucy fallback runs, the shadows found in the frame (collimation,
    # markers, borders: they need not have moved with the patient) left out of its fit and
    # given back unchanged (the fifty-fourth round, docs/models.md; the default since
    # sharpray-blind-wiener 0.40.0); false: the whole frame fitted (0.34.0)
    fallback_leaves_shadows: bool = True
    # the motion estimate's spectrum windows kept clear of the shadows found in the frame, that
    # estimate taken where it finds at least this much motion (mm; shorter: the windows nearest
    # the centre, whatever they hold): a small frame whose collimation stayed sharp is judged
    # on its anatomy (the fifty-fifth and fifty-sixth rounds, docs/models.md; the default since
    # sharpray-blind-wiener 0.42.0); null: the windows nearest the centre always (0.40.0)
    estimate_clear_of_shadows_from_mm: float | None = Field(2.0, gt=0)
    # ... at pixels finer than this (mm) only; null: at every pixel size
    estimate_clear_of_shadows_finer_than_mm: float | None = Field(0.4, gt=0)
    # those shadows widened by a square, a marker's corners too (the fifty-seventh round,
    # docs/models.md; the default since sharpray-blind-wiener 0.44.0); false: by a diamond, a
    # rectangle's corners left in the fit (0.42.0)
    shadows_whole_corners: bool = True
    # the straight kernel drawn (nearest pixels, bilinear or Lanczos-3) the way the frame's
    # spectrum follows best instead of always on the nearest pixels: a line drawn otherwise
    # than the kernel costs the correction 0.3-0.6 dB without noise (the forty-fifth to
    # forty-seventh rounds, docs/models.md; the default since sharpray-blind-wiener 0.31.0,
    # false gives 0.27.0)
    kernel_drawing_by_spectrum: bool = True
    # ... read only over the frequencies whose power is at least this many times the frame's
    # noise floor (null: all; in noisy frames the smoother drawing then fits: the forty-sixth
    # round) ...
    kernel_drawing_above_noise: float | None = Field(2.0, gt=0)
    # ... and another drawing than the nearest pixels only where it fits better by more than this
    kernel_drawing_margin: float = Field(0.02, ge=0, lt=2)
    # where a frame is flagged and its motion estimate is at most this many pixels, the kernel's
    # length read from the power along the motion over the power across it, where that is
    # shorter: a low-pass alike in every direction (a detector's MTF, a resampling, a display
    # filter) cancels there, where the estimate takes a soft frame's fall for a longer motion
    # (the fifty-ninth to sixty-first rounds, docs/models.md; the default since
    # sharpray-blind-wiener 0.46.0); null: the estimate's length always (0.44.0)
    kernel_length_across_up_to_px: float | None = Field(5.5, gt=0, le=64)
    # ... only where the read length fits that ratio better than the estimate's by at least this
    # (RMS of the log ratio's residual); null: wherever it is read
    kernel_length_across_min_fit_gain: float | None = Field(0.25, ge=0)
    # ... and where the estimate's straight template scores the read length at most this much
    # under its own (a template that falls off more read its dips); null: wherever
    kernel_length_across_max_template_drop: float | None = Field(0.15, ge=0)
    # ... times this where the kernel shape step read the frame's kernel magnitude (pixels of
    # 0.4 mm or more, frames of at least 384 px at 0.6 mm): a checked kernel needs less (1: as 0.7.0)
    wiener_balance_checked_factor: float = Field(0.5, gt=0, le=4)
    wiener_power: float = Field(1.0, ge=0, le=2)  # 0 constant, 2 gradient (Laplacian) penalty
    # ... and the penalty at least this times the noise measured in the frame over its anatomy's
    # power law across the motion, sigma^2 |f|^beta / A (the MMSE Wiener filter's own ratio at 1;
    # the thirty-ninth and fortieth rounds, docs/models.md: sharpray-blind-wiener 0.25.0); null:
    # the penalty above alone (0.18.0)
    wiener_penalty_noise_over_signal: float | None = Field(1.0, gt=0, le=10)
    # ... only in frames whose pixels are finer than this (mm; at 0.6 mm the floor held back the
    # frames' own noise, which a sharp reference counts as detail); null: at every pixel size
    wiener_penalty_noise_finer_than_mm: float | None = Field(0.4, gt=0)
    richardson_lucy_steps: int = Field(0, ge=0, le=50)  # after the Wiener filter; 0 = Wiener only
    # Wiener result outside the data's range on more than this share of pixels (ringing at hard
    # edges): Richardson-Lucy (rl_fallback_steps from a flat start) instead; null: Wiener always
    ringing_limit: float | None = Field(0.01, ge=0, le=1)
    rl_fallback_steps: int = Field(10, ge=1, le=100)
    # ... more of them for a quieter frame: steps * (measured quanta / 6e3) ** 0.6, up to the max
    rl_fallback_follows_noise: bool = False
    rl_fallback_max_steps: int = Field(40, ge=1, le=200)
    # ... by that law only where the kernel shape step's retrieved kernel takes the fallback
    # (straight kernels keep rl_fallback_steps; the twenty-ninth round, docs/models.md; false:
    # ten steps there too, as sharpray-blind-wiener 0.14.0)
    shape_rl_follows_noise: bool = True
    # ... by that law for every kernel, the straight one too, in frames whose pixels are at least
    # this large (mm; the thirtieth round, docs/models.md; sharpray-blind-wiener 0.18.0); null:
    # only as the two settings above say (0.16.0)
    rl_follows_noise_from_mm: float | None = Field(0.4, gt=0)
    # ... up to this many steps on a frame smaller than 1024 x 1024 px: as many as
    # rl_fallback_max_steps take on a 1024 x 1024 frame (a step's time follows the frame's area;
    # the thirty-second round, docs/models.md: 120 gives sharpray-blind-wiener 0.20.0; it missed
    # its validation rule on curved motion, so it is off); null: rl_fallback_max_steps on every
    # frame (0.18.0)
    rl_fallback_budget_max_steps: int | None = Field(None, ge=1, le=400)
    # ... by that law also in a frame with finer pixels whose measured noise is at least this many
    # quanta per pixel, up to rl_fallback_max_steps on a frame of 2048 x 1024 px and fewer on a
    # larger one (20 at 2048 x 2048; the sixty-sixth round, docs/models.md); null: a fixed
    # rl_fallback_steps there
    rl_fallback_quiet_from_quanta: float | None = Field(None, gt=0)
    # ... for a straight-motion estimate of at least this many pixels (8: the sixty-sixth round)
    rl_fallback_quiet_min_px: float = Field(8.0, ge=0)
    # The quantum-noise floor the motion estimate assumes at least (quanta per 0.15 mm pixel,
    # scaled with the pixel area): a noiseless frame is weighed as a real detector's; null: none
    noise_floor_quanta: float | None = Field(1e5, gt=0)
    # The white noise measured in the frame taken out of the motion estimate's spectrum, so that
    # short motion in a noisy frame is found as in a quiet one (docs/models.md, eighth to tenth
    # rounds): second_look, only where the estimate without it finds no motion (0.9.0); always;
    # never (0.8.0)
    motion_estimate_noise_subtraction: Literal["never", "always", "second_look"] = "second_look"
    # ... never in a frame a lossy codec made (an 8-bit decoded JPEG; the header's Lossy Image
    # Compression or transfer syntax): its "noise" is the codec's (docs/models.md, tenth round)
    noise_subtraction_skips_jpeg: bool = True
    notify_to: list[str] = []  # destinations of the fast image-quality notice SR (e.g. sender)
    notice_series_number: int = Field(9010, ge=0)
    notice_sc: bool = False  # also a colour SC with a banner (series notice_series_number + 1)

    @model_validator(mode="after")
    def _ordered(self) -> BlurGateSettings:
        if self.severe_from_mm < self.blurred_from_mm:
            raise ValueError("severe_from_mm must not be below blurred_from_mm")
        strong = self.strong_fit_blurred_from_mm
        if strong is not None and strong > self.blurred_from_mm:
            raise ValueError("strong_fit_blurred_from_mm must not be above blurred_from_mm")
        if self.wiener_balance_max < self.wiener_balance_min:
            raise ValueError("wiener_balance_max must not be below wiener_balance_min")
        return self


class ScopeSettings(Strict):
    """Intended use, enforced before any diagnosis (node/pipeline/scope.py).

    The classifier's manifest says what it is for (modalities, body parts, views, ages, pixel
    spacing); each check below can be switched off, and the image check's threshold changed.
    An image out of scope is still corrected when blurred, but gets no finding and no heatmap:
    the SR says "not analysed" and why.
    """

    enabled: bool = True
    check_modality: bool = True  # Modality in the intended modalities (CR/DX)
    check_body_part: bool = True  # Body Part Examined, where present, a chest
    check_view: bool = True  # View Position, where present, frontal (AP/PA)
    check_age: bool = True  # Patient's Age, where present, in the trained population's range
    check_pixel_spacing: bool = True  # Imager/Pixel Spacing, where present, in the model's range
    check_image: bool = True  # the pixels look like a frontal chest radiograph (models/scope.py)
    image_threshold: float | None = Field(None, gt=0)  # None: the scope model's own
    model: Path = BUNDLED_MODELS / "chest-scope"  # folder holding scope.npz

    @field_validator("model", mode="before")
    @classmethod
    def _bundled_model(cls, v: object) -> object:
        return BUNDLED_MODELS / "chest-scope" if v is None else _bundled_folder(v)


def _bundled_folder(v: object) -> object:
    if isinstance(v, str) and "/" not in v and (BUNDLED_MODELS / v).is_dir():
        return BUNDLED_MODELS / v
    return v


def _as_list(v: object) -> object:
    """A single value where a list is expected: ``calling_ae: CR1`` means ``[CR1]``."""
    return [v] if isinstance(v, str | int | float) else v


class AttributeCondition(Strict):
    """One test on a DICOM attribute of the received header. Exactly one operator is given.

    ``tag`` is a keyword (``Modality``) or a tag (``(0018,5101)``, ``0018,5101``, ``00185101``).
    A multi-valued attribute satisfies the condition when any of its values does.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    tag: str
    equals: str | float | None = None
    in_: list[str | float] | None = Field(None, alias="in")
    regex: str | None = None  # re.search against each value: anchor with ^...$ for a full match
    present: bool | None = None  # true: present and not empty; false: absent or empty
    lt: float | None = None
    le: float | None = None
    gt: float | None = None
    ge: float | None = None
    negate: bool = False  # true: the condition holds when the test fails

    @field_validator("tag")
    @classmethod
    def _tag(cls, v: str) -> str:
        parse_tag(v)
        return v

    @field_validator("regex")
    @classmethod
    def _regex(cls, v: str | None) -> str | None:
        if v is not None:
            try:
                re.compile(v)
            except re.error as e:
                raise ValueError(f"invalid regular expression: {e}") from None
        return v

    @model_validator(mode="after")
    def _one_operator(self) -> AttributeCondition:
        given = [k for k in OPERATORS if getattr(self, k) is not None]
        if len(given) != 1:
            names = ", ".join("in" if k == "in_" else k for k in OPERATORS)
            raise ValueError(f"give exactly one of {names} (got {len(given)})")
        return self

    @property
    def operator(self) -> str:
        return next(k for k in OPERATORS if getattr(self, k) is not None)


OPERATORS = ("equals", "in_", "regex", "present", "lt", "le", "gt", "ge")


def parse_tag(text: str) -> int:
    """A keyword or a (gggg,eeee) tag as an int; ValueError names what is wrong."""
    from pydicom.datadict import tag_for_keyword

    t = text.strip()
    m = re.fullmatch(r"\(?\s*([0-9A-Fa-f]{4})\s*,?\s*([0-9A-Fa-f]{4})\s*\)?", t)
    if m:
        return int(m.group(1) + m.group(2), 16)
    tag = tag_for_keyword(t)
    if tag is None:
        raise ValueError(f"{text!r} is neither a DICOM keyword nor a (gggg,eeee) tag")
    return int(tag)


class RuleMatch(Strict):
    """When a rule applies: every given condition must hold (empty lists match anything)."""

    source: list[Literal["dimse", "dicomweb"]] = []  # how the instance arrived
    calling_ae: list[str] = []  # the sender's AE title (DIMSE), any of these
    called_ae: list[str] = []  # the AE title it called us by (DIMSE), any of these
    attributes: list[AttributeCondition] = []  # tests on the DICOM header, all must hold

    @field_validator("source", "calling_ae", "called_ae", mode="before")
    @classmethod
    def _listify(cls, v: object) -> object:
        return _as_list(v)

    @property
    def empty(self) -> bool:
        return not (self.source or self.calling_ae or self.called_ae or self.attributes)


class TriggerSettings(Strict):
    """When processing starts: per instance at once, or per series/study once no new instance
    of it has arrived for ``idle_s`` seconds (a PA and a lateral often come as two series)."""

    group: Literal["instance", "series", "study"] = "instance"
    idle_s: float = Field(0.0, ge=0)


class FallbackRuleSettings(Strict):
    """A rule's actions; the fallback rule is only this (it applies when no rule matches)."""

    name: str = Field(min_length=1, max_length=64)
    process: str | None = None  # a pipeline name (``pipelines``); None = do not process
    send_results_to: list[str] = []  # destinations for the results of ``process``
    forward_original_to: list[str] = []  # destinations for the received instance, unchanged
    ignore: bool = False  # do nothing (a log line and an audit row say so)
    trigger: TriggerSettings = TriggerSettings()

    @field_validator("send_results_to", "forward_original_to", mode="before")
    @classmethod
    def _listify(cls, v: object) -> object:
        return _as_list(v)

    @model_validator(mode="after")
    def _consistent(self) -> FallbackRuleSettings:
        acts = bool(self.process or self.forward_original_to)
        if self.ignore and (acts or self.send_results_to):
            raise ValueError(f"rule {self.name!r}: ignore cannot be combined with other actions")
        if not self.ignore and not acts:
            raise ValueError(
                f"rule {self.name!r} does nothing: give process, forward_original_to or ignore"
            )
        if self.send_results_to and not self.process:
            raise ValueError(f"rule {self.name!r}: send_results_to needs process")
        if self.trigger.group != "instance" and not self.process:
            raise ValueError(f"rule {self.name!r}: a series/study trigger needs process")
        return self


class RuleSettings(FallbackRuleSettings):
    """A routing rule: conditions (``match``) and actions."""

    match: RuleMatch = RuleMatch()


class RoutingSettings(Strict):
    # Evaluated in order; the first rule whose ``match`` holds decides. None matched: fallback.
    rules: list[RuleSettings] = []
    fallback: FallbackRuleSettings = FallbackRuleSettings(
        name="fallback", process="full", send_results_to=["pacs"]
    )
    # An object this node made (its Contributing Equipment names results.manufacturer as
    # Processing Equipment) that comes back, e.g. a PACS routing the study here again: stored
    # (and served by DICOMweb) but neither processed nor forwarded; false = routed like any other
    ignore_own_results: bool = True

    @model_validator(mode="after")
    def _names(self) -> RoutingSettings:
        names = [r.name for r in self.rules] + [self.fallback.name]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"rule names must be unique: {dup}")
        return self


class LoggingSettings(Strict):
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    # One line per HTTP request (client, method, path, status, ms); never the query string,
    # which can hold patient names (QIDO-RS).
    http_access: bool = True


class DicomWebServerAuth(Strict):
    """Who may use the node's DICOMweb service. Secrets come from the environment, never the file.

    ``enabled``: "auto" asks for credentials on every DICOMweb request when ``node.http_bind`` is
    not a loopback address, and on none when it is; true/false force it. Whatever it says, STOW-RS
    (a write) is never open without credentials on a non-loopback address: with none configured
    it answers 401 to every store.
    """

    enabled: Literal["auto"] | bool = "auto"
    bearer_token_envs: list[str] = []  # environment variables, each holding one accepted token
    basic_users: dict[str, str] = {}  # HTTP basic user name -> environment variable with password


class DicomWebServerSettings(Strict):
    """The node's own DICOMweb service (STOW-RS, QIDO-RS, WADO-RS) under /dicom-web."""

    enabled: bool = True
    # Public URL of the service root in RetrieveURL values (behind a proxy); None = from the request.
    base_url: str | None = None
    max_body_bytes: int = Field(4 * 1024**3, gt=0)  # larger STOW-RS requests: 413
    max_instance_bytes: int = Field(512 * 1024**2, gt=0)  # larger parts: failure 0xA700
    max_results: int = Field(1000, ge=1)  # QIDO-RS answers at most this many matches at once
    auth: DicomWebServerAuth = DicomWebServerAuth()
    # dist/ folder of the npm package @ohif/app: served at /viewer against this DICOMweb
    viewer_dir: Path | None = None

    @field_validator("viewer_dir")
    @classmethod
    def _viewer_dir(cls, v: Path | None) -> Path | None:
        if v is not None and not ((v / "index.html").is_file() and any(v.glob("app.bundle.*.js"))):
            raise ValueError(
                f"{v} is not a built OHIF viewer (no index.html and app.bundle.*.js): "
                "name the dist/ folder of the npm package @ohif/app"
            )
        return v

    @field_validator("base_url")
    @classmethod
    def _base_url(cls, v: str | None) -> str | None:
        if v is not None and not re.match(r"^https?://[^/\s]+", v):
            raise ValueError("must be an http:// or https:// URL")
        return None if v is None else v.rstrip("/")


class Settings(Strict):
    node: NodeSettings = NodeSettings()
    storage: StorageSettings = StorageSettings()
    models: ModelSettings = ModelSettings()
    workers: WorkerSettings = WorkerSettings()
    dispatch: DispatchSettings = DispatchSettings()
    destinations: dict[str, Destination] = {
        "pacs": DimseDestination(ae_title="PACS", host="127.0.0.1", port=4242),
        "sender": ReturnToSenderDestination(type="return_to_sender"),
    }
    pipelines: dict[str, PipelineSettings] = {
        "full": PipelineSettings(results=["sc", "overlay", "gsps", "sr"]),
        "full_with_seg": PipelineSettings(results=["sc", "overlay", "gsps", "seg", "sr"]),
        "report_only": PipelineSettings(results=["sr"]),
    }
    routing: RoutingSettings = RoutingSettings()
    results: ResultSettings = ResultSettings()
    blur_gate: BlurGateSettings = BlurGateSettings()
    scope: ScopeSettings = ScopeSettings()
    logging: LoggingSettings = LoggingSettings()
    dicomweb: DicomWebServerSettings = DicomWebServerSettings()

    @model_validator(mode="after")
    def _references_exist(self) -> Settings:
        known = ", ".join(sorted(self.destinations)) or "none"
        for rule in [*self.routing.rules, self.routing.fallback]:
            for key in ("send_results_to", "forward_original_to"):
                for name in getattr(rule, key):
                    if name not in self.destinations:
                        raise ValueError(
                            f"routing rule {rule.name!r}: {key} names destination {name!r}, "
                            f"which is not in destinations ({known})"
                        )
            if rule.process is not None and rule.process not in self.pipelines:
                raise ValueError(
                    f"routing rule {rule.name!r}: process names pipeline {rule.process!r}, "
                    f"which is not in pipelines ({', '.join(sorted(self.pipelines)) or 'none'})"
                )
        for name in self.blur_gate.notify_to:
            if name not in self.destinations:
                raise ValueError(
                    f"blur_gate.notify_to names destination {name!r}, "
                    f"which is not in destinations ({known})"
                )
        return self

    def resolve_paths(self, base: Path) -> Settings:
        """Make relative paths relative to ``base`` (the config file's folder)."""

        def fix(p: Path) -> Path:
            return p if p.is_absolute() else (base / p)

        url = self.storage.database_url
        if url.startswith("sqlite:///") and not url.startswith("sqlite:////"):
            rel = url[len("sqlite:///") :]
            if rel and rel != ":memory:":
                url = "sqlite:///" + str(fix(Path(rel)))
        return self.model_copy(
            update={
                "node": self.node.model_copy(
                    update={
                        "tls": self.node.tls.model_copy(
                            update={
                                k: fix(v)
                                for k, v in (
                                    ("certificate", self.node.tls.certificate),
                                    ("private_key", self.node.tls.private_key),
                                    ("ca_certificates", self.node.tls.ca_certificates),
                                )
                                if v is not None
                            }
                        )
                    }
                ),
                "storage": self.storage.model_copy(
                    update={"folder": fix(self.storage.folder), "database_url": url}
                ),
                "models": self.models.model_copy(
                    update={
                        "deblur": fix(self.models.deblur)
                        if self.models.deblur is not None
                        else None,
                        "classify": fix(self.models.classify),
                    }
                ),
                "destinations": {
                    name: _resolve_destination_paths(d, fix)
                    for name, d in self.destinations.items()
                },
            }
        )


def _resolve_destination_paths(d: BaseModel, fix: Any) -> Any:
    """CA, certificate and key files of a destination, relative to the config file's folder."""
    update: dict[str, Any] = {}
    for key in ("ca_file", "cert_file", "key_file"):
        if getattr(d, key, None) is not None:
            update[key] = fix(getattr(d, key))
    tls = getattr(d, "tls", None)
    if isinstance(tls, TlsSettings):
        update["tls"] = _resolve_destination_paths(tls, fix)
    return d.model_copy(update=update) if update else d


def _deep_merge(base: dict[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in over.items():
        if isinstance(v, Mapping) and isinstance(out.get(k), dict):
            out[k] = _deep_merge(out[k], v)
        else:
            out[k] = v
    return out


def env_overrides(environ: Mapping[str, str]) -> dict[str, Any]:
    """``SHARPRAY_A__B=v`` -> ``{"a": {"b": yaml(v)}}``. SHARPRAY_CONFIG is the file, not a key."""
    out: dict[str, Any] = {}
    for key, raw in environ.items():
        if not key.startswith(ENV_PREFIX) or key == ENV_PREFIX + "CONFIG":
            continue
        path = [p.lower() for p in key[len(ENV_PREFIX) :].split("__") if p]
        if not path:
            continue
        try:
            value = yaml.safe_load(raw) if raw != "" else ""
        except yaml.YAMLError:
            value = raw
        node = out
        for p in path[:-1]:
            node = node.setdefault(p, {})
        node[path[-1]] = value
    return out


def _format_error(e: ValidationError, origin: str) -> str:
    lines = [f"invalid configuration ({origin}):"]
    for err in e.errors():
        key = ".".join(str(p) for p in err["loc"]) or "(top level)"
        lines.append(f"  {key}: {err['msg']}")
    return "\n".join(lines)


#: Where the configuration file is looked for, in this order (README "Configuration").
CONFIG_LOOKUP = ("--config FILE", "$SHARPRAY_CONFIG", "./config.yaml")


def config_path(
    given: Path | None,
    environ: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> Path | None:
    """The configuration file to read (:data:`CONFIG_LOOKUP`): the one given on the command line,
    else ``$SHARPRAY_CONFIG``, else ``./config.yaml`` when present, else None (defaults)."""
    environ = os.environ if environ is None else environ
    if given is not None:
        return given
    if environ.get(ENV_PREFIX + "CONFIG"):
        return Path(environ[ENV_PREFIX + "CONFIG"])
    local = (cwd or Path.cwd()) / "config.yaml"
    return local if local.is_file() else None


def load_settings(path: Path | None = None, environ: Mapping[str, str] | None = None) -> Settings:
    """Read the YAML file (``path``, else ``$SHARPRAY_CONFIG``, else none: ``./config.yaml`` is
    the CLI's business, :func:`config_path`), overlay the environment, validate; raise
    ConfigError."""
    environ = os.environ if environ is None else environ
    if path is None and environ.get(ENV_PREFIX + "CONFIG"):
        path = Path(environ[ENV_PREFIX + "CONFIG"])
    data: dict[str, Any] = {}
    base = Path.cwd()
    if path is not None:
        try:
            loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
        except FileNotFoundError as e:
            raise ConfigError(f"configuration file not found: {path}") from e
        except yaml.YAMLError as e:
            raise ConfigError(f"configuration file {path} is not valid YAML: {e}") from e
        if loaded is not None and not isinstance(loaded, dict):
            raise ConfigError(f"configuration file {path} must hold a mapping at the top level")
        data = loaded or {}
        base = path.resolve().parent
    data = _deep_merge(data, env_overrides(environ))
    try:
        settings = Settings.model_validate(data)
    except ValidationError as e:
        raise ConfigError(_format_error(e, str(path) if path else "defaults")) from None
    return settings.resolve_paths(base)
