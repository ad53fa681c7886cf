"""A blur-gate setting from config.yaml and from the environment, as a test checks it."""

from __future__ import annotations

from pathlib import Path

from node.config import Settings, load_settings
from node.pipeline.blur_gate import policy as policy_of


def gate_setting(cfg: Path, yaml: str, name: str, value: object, by_env: object) -> Settings:
    """Writes ``yaml`` to ``cfg``; checks that ``blur_gate.name`` reaches the motion policy as
    ``value`` and that its environment variable (``SHARPRAY_BLUR_GATE__NAME``) gives ``by_env``
    instead; returns the settings read from the file alone."""
    cfg.write_text(yaml)
    settings = load_settings(cfg, environ={})
    assert getattr(policy_of(settings.blur_gate), name) == value
    env = {f"SHARPRAY_BLUR_GATE__{name.upper()}": str(by_env).lower()}
    assert getattr(load_settings(cfg, environ=env).blur_gate, name) == by_env
    return settings


#: The environment that makes the fallback fit the whole frame again (``blur_gate.
#: fallback_leaves_shadows: false``) and the motion estimate read the windows nearest the centre
#: (``estimate_clear_of_shadows_from_mm: null``), as every version up to 0.36.0 did: the
#: settings tests of earlier rounds check their versions on that chain (0.40.0 leaves the
#: shadows out of the fallback, 0.42.0 out of the estimate too). The kernel's length as the
#: estimate's too (``kernel_length_across_up_to_px: null``), as every version up to 0.44.0.
WHOLE_FRAME = {
    "SHARPRAY_BLUR_GATE__FALLBACK_LEAVES_SHADOWS": "false",
    "SHARPRAY_BLUR_GATE__ESTIMATE_CLEAR_OF_SHADOWS_FROM_MM": "null",
    "SHARPRAY_BLUR_GATE__KERNEL_LENGTH_ACROSS_UP_TO_PX": "null",
}
