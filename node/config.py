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
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

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


class NodeSettings(Strict):
    ae_title: str = "SHARPRAY"
    bind: str = "0.0.0.0"
    dimse_port: int = Field(11112, ge=0, le=65535)
    http_bind: str = "127.0.0.1"
    http_port: int = Field(8080, ge=0, le=65535)
    # 0 = unlimited receive PDU (several times faster for large images than pynetdicom's 16 KB)
    max_pdu: int = Field(0, ge=0)
    max_associations: int = Field(16, ge=1)
    network_timeout_s: float = Field(60.0, gt=0)
    # Calling AE titles allowed to store; empty = anyone.
    allowed_calling_aes: list[str] = []

    @field_validator("ae_title", mode="before")
    @classmethod
    def _ae(cls, v: object) -> str:
        return _check_ae(v)


class StorageSettings(Strict):
    folder: Path = Path("var/store")
    database_url: str = "sqlite:///var/sharpray.db"


class ModelSettings(Strict):
    # A folder holding manifest.json + the ONNX file (or the manifest file itself).
    deblur: Path = BUNDLED_MODELS / "deblur-demo"
    classify: Path = BUNDLED_MODELS / "classify-demo"

    @field_validator("deblur", mode="before")
    @classmethod
    def _default_deblur(cls, v: object) -> object:
        return BUNDLED_MODELS / "deblur-demo" if v is None else v

    @field_validator("classify", mode="before")
    @classmethod
    def _default_classify(cls, v: object) -> object:
        return BUNDLED_MODELS / "classify-demo" if v is None else v

    # "auto": CUDA/TensorRT when onnxruntime offers them, CPU otherwise. Or an explicit list.
    providers: Literal["auto", "cpu", "cuda", "tensorrt"] = "auto"
    intra_op_threads: int = Field(0, ge=0)  # 0 = ONNX Runtime's default (all cores)
    deblur_tile: int | None = Field(None, gt=0)  # override the manifest's tile size
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


class DimseDestination(Strict):
    type: Literal["dimse"] = "dimse"
    ae_title: str
    host: str
    port: int = Field(ge=1, le=65535)
    calling_ae_title: str | None = None  # default: node.ae_title

    @field_validator("ae_title", mode="before")
    @classmethod
    def _ae(cls, v: object) -> str:
        return _check_ae(v)


class ResultSettings(Strict):
    corrected_sc: bool = True
    report_sr: bool = True
    series_number_sc: int = Field(9001, ge=0)
    series_number_sr: int = Field(9002, ge=0)
    manufacturer: str = "SharpRay"
    institution: str | None = None


class RoutingSettings(Strict):
    # Destinations that receive every result (by name, from `destinations`).
    send_results_to: list[str] = ["pacs"]


class LoggingSettings(Strict):
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"


class Settings(Strict):
    node: NodeSettings = NodeSettings()
    storage: StorageSettings = StorageSettings()
    models: ModelSettings = ModelSettings()
    workers: WorkerSettings = WorkerSettings()
    dispatch: DispatchSettings = DispatchSettings()
    destinations: dict[str, DimseDestination] = {
        "pacs": DimseDestination(ae_title="PACS", host="127.0.0.1", port=4242)
    }
    routing: RoutingSettings = RoutingSettings()
    results: ResultSettings = ResultSettings()
    logging: LoggingSettings = LoggingSettings()

    @model_validator(mode="after")
    def _destinations_exist(self) -> Settings:
        for name in self.routing.send_results_to:
            if name not in self.destinations:
                raise ValueError(
                    f"routing.send_results_to names destination {name!r}, "
                    f"which is not in destinations ({', '.join(sorted(self.destinations)) or 'none'})"
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
                "storage": self.storage.model_copy(
                    update={"folder": fix(self.storage.folder), "database_url": url}
                ),
                "models": self.models.model_copy(
                    update={
                        "deblur": fix(self.models.deblur),
                        "classify": fix(self.models.classify),
                    }
                ),
            }
        )


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


def load_settings(path: Path | None = None, environ: Mapping[str, str] | None = None) -> Settings:
    """Read the YAML file (if any), overlay the environment, validate; raise ConfigError."""
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
