"""Routing: which rule applies to a received instance, and what follows from it.

Plain functions over the routing settings, a pydicom header (no pixel data needed) and how the
instance arrived (``Received``). Rules are evaluated in order; the first whose every condition
holds decides; when none does, the fallback rule decides. ``explain`` says, rule by rule, which
condition failed, for ``sharpray route --dry-run``. Nothing here touches the database; turning
a decision into jobs is ``node.schedule``.

Messages never quote attribute values (they may be patient data): they name the tag and the test.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from pydicom.dataset import Dataset
from pydicom.multival import MultiValue

from node.config import (
    AttributeCondition,
    FallbackRuleSettings,
    RuleMatch,
    Settings,
    parse_tag,
)
from node.instance_index import Received


@dataclass(frozen=True)
class Decision:
    """What one rule decided for one instance; stored in the job's ``detail["route"]``."""

    rule: str
    fallback: bool = False
    ignore: bool = False
    pipeline: str | None = None
    results: tuple[str, ...] = ()  # result kinds the pipeline builds
    send_results_to: tuple[str, ...] = ()
    forward_original_to: tuple[str, ...] = ()
    group: str = "instance"  # instance | series | study
    idle_s: float = 0.0

    def to_detail(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "fallback": self.fallback,
            "ignore": self.ignore,
            "pipeline": self.pipeline,
            "results": list(self.results),
            "send_results_to": list(self.send_results_to),
            "forward_original_to": list(self.forward_original_to),
            "group": self.group,
            "idle_s": self.idle_s,
        }

    @classmethod
    def from_detail(cls, d: dict[str, Any]) -> Decision:
        return cls(
            rule=str(d["rule"]),
            fallback=bool(d.get("fallback", False)),
            ignore=bool(d.get("ignore", False)),
            pipeline=d.get("pipeline"),
            results=tuple(d.get("results", ())),
            send_results_to=tuple(d.get("send_results_to", ())),
            forward_original_to=tuple(d.get("forward_original_to", ())),
            group=str(d.get("group", "instance")),
            idle_s=float(d.get("idle_s", 0.0)),
        )

    def summary(self) -> str:
        """One line for logs, the audit table and the dry run (names only, no patient data)."""
        if self.ignore and self.rule == "own-result":
            return "own result of this node (routing.ignore_own_results): stored, not processed"
        if self.ignore:
            return f"rule {self.rule}: ignore"
        parts = []
        if self.pipeline:
            when = (
                "" if self.group == "instance" else f" per {self.group} after {self.idle_s:g}s idle"
            )
            to = ", ".join(self.send_results_to) or "nowhere"
            parts.append(f"process with {self.pipeline} ({'+'.join(self.results)}){when} -> {to}")
        if self.forward_original_to:
            parts.append(f"forward original -> {', '.join(self.forward_original_to)}")
        return f"rule {self.rule}{' (fallback)' if self.fallback else ''}: " + "; ".join(parts)


@dataclass(frozen=True)
class RuleCheck:
    """Whether one rule matched, and if not, the first condition that failed."""

    rule: str
    matched: bool
    failed: str | None = None


@dataclass
class DryRun:
    decision: Decision
    checks: list[RuleCheck] = field(default_factory=list)


def decision_for(
    rule: FallbackRuleSettings, settings: Settings, *, fallback: bool = False
) -> Decision:
    pipeline = settings.pipelines[rule.process] if rule.process else None
    return Decision(
        rule=rule.name,
        fallback=fallback,
        ignore=rule.ignore,
        pipeline=rule.process,
        results=tuple(pipeline.results) if pipeline else (),
        send_results_to=tuple(rule.send_results_to),
        forward_original_to=tuple(rule.forward_original_to),
        group=rule.trigger.group,
        idle_s=rule.trigger.idle_s,
    )


OWN_RESULTS_RULE = "own-result"
PROCESSING_EQUIPMENT = "109102"
OWN_RESULT_TAG = 0x0018A001  # Contributing Equipment Sequence: what the own-results check reads


def is_own_result(settings: Settings, header: Dataset) -> bool:
    """Whether ``header`` is an object this node made: a Contributing Equipment item with purpose
    (109102, DCM, "Processing Equipment") and this node's ``results.manufacturer``."""
    for item in header.get("ContributingEquipmentSequence", []):
        purposes = item.get("PurposeOfReferenceCodeSequence", [])
        if str(item.get("Manufacturer", "")) == settings.results.manufacturer and any(
            str(p.get("CodeValue", "")) == PROCESSING_EQUIPMENT for p in purposes
        ):
            return True
    return False


def own_result_decision() -> Decision:
    return Decision(rule=OWN_RESULTS_RULE, ignore=True)


def needs_header(settings: Settings) -> bool:
    """Whether routing reads the DICOM header (rules on attributes, or the own-results check)."""
    return settings.routing.ignore_own_results or uses_attributes(settings)


def decide(settings: Settings, header: Dataset, received: Received) -> Decision:
    """The decision of the first rule that matches, else of the fallback rule; an object this
    node made is ignored first (``routing.ignore_own_results``)."""
    if settings.routing.ignore_own_results and is_own_result(settings, header):
        return own_result_decision()
    for rule in settings.routing.rules:
        if _first_failure(rule.match, header, received) is None:
            return decision_for(rule, settings)
    return decision_for(settings.routing.fallback, settings, fallback=True)


def explain(settings: Settings, header: Dataset, received: Received) -> DryRun:
    """Every rule in order with why it did (not) match, and the resulting decision."""
    checks: list[RuleCheck] = []
    decision: Decision | None = None
    if settings.routing.ignore_own_results and is_own_result(settings, header):
        decision = own_result_decision()
    for rule in settings.routing.rules:
        failed = _first_failure(rule.match, header, received)
        checks.append(RuleCheck(rule.name, failed is None, failed))
        if failed is None and decision is None:
            decision = decision_for(rule, settings)
    if decision is None:
        decision = decision_for(settings.routing.fallback, settings, fallback=True)
    return DryRun(decision, checks)


def uses_attributes(settings: Settings) -> bool:
    """Whether any rule tests the DICOM header (else the header need not be parsed for routing)."""
    return any(r.match.attributes for r in settings.routing.rules)


# -- conditions --------------------------------------------------------------------------------


def _first_failure(match: RuleMatch, header: Dataset, received: Received) -> str | None:
    """None when every condition holds; else a description of the first that does not."""
    if match.source and received.source not in match.source:
        return f"source is not {' or '.join(match.source)}"
    if match.calling_ae and (received.calling_ae or "") not in match.calling_ae:
        return f"calling AE title is not one of {', '.join(match.calling_ae)}"
    if match.called_ae and (received.called_ae or "") not in match.called_ae:
        return f"called AE title is not one of {', '.join(match.called_ae)}"
    for cond in match.attributes:
        if not condition_holds(cond, header):
            return f"{describe(cond)} does not hold"
    return None


def describe(cond: AttributeCondition) -> str:
    op = cond.operator
    value = getattr(cond, op)
    if op == "present":
        text = f"{cond.tag} is {'present' if value else 'absent'}"
    elif op == "in_":
        text = f"{cond.tag} in {list(value)}"
    elif op == "regex":
        text = f"{cond.tag} matches /{value}/"
    else:
        sym = {"equals": "==", "lt": "<", "le": "<=", "gt": ">", "ge": ">="}[op]
        text = f"{cond.tag} {sym} {value!r}"
    return f"not ({text})" if cond.negate else text


def condition_holds(cond: AttributeCondition, header: Dataset) -> bool:
    return _test(cond, header) != cond.negate


def _test(cond: AttributeCondition, header: Dataset) -> bool:
    elem = header.get(parse_tag(cond.tag))
    values = _values(elem.value) if elem is not None else []
    op = cond.operator
    if op == "present":
        return bool(values) == cond.present
    if elem is not None and elem.VR == "SQ":
        return False  # sequences: only present/absent
    if op == "equals":
        return any(_equal(v, cond.equals) for v in values)
    if op == "in_":
        assert cond.in_ is not None
        return any(_equal(v, want) for v in values for want in cond.in_)
    if op == "regex":
        assert cond.regex is not None
        pattern = re.compile(cond.regex)
        return any(pattern.search(str(v)) is not None for v in values)
    limit = float(getattr(cond, op))
    compare = {
        "lt": lambda x: x < limit,
        "le": lambda x: x <= limit,
        "gt": lambda x: x > limit,
        "ge": lambda x: x >= limit,
    }[op]
    return any(compare(x) for x in _numbers(values))


def _values(value: object) -> list[object]:
    """An element's values as a list; empty when absent or empty."""
    if value is None:
        return []
    items: Iterable[object] = value if isinstance(value, MultiValue | list) else [value]
    out: list[object] = []
    for v in items:
        if v is None:
            continue
        if isinstance(v, bytes):
            v = v.decode("latin-1", "replace")
        if isinstance(v, str):
            v = v.strip(" \x00")
            if not v:
                continue
        out.append(v)
    return out


def _numbers(values: list[object]) -> list[float]:
    out = []
    for v in values:
        try:
            out.append(float(str(v)))
        except ValueError:
            continue
    return out


def _equal(value: object, want: str | float | None) -> bool:
    if isinstance(want, int | float) and not isinstance(want, bool):
        try:
            return float(str(value)) == float(want)
        except ValueError:
            return False
    return str(value) == str(want)
