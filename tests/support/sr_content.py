"""Read the node's TID 1500 reports back as plain values, and judge them with pixelmed.

The node writes every measurement group in the form OHIF v3 can display (see
``node/pipeline/results/sr_parts.py``); these helpers read that form with plain pydicom, so the
tests check the encoded content itself rather than one library's reading of it.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import pydicom

PIXELMED_JAR = Path("/usr/share/java/pixelmed.jar")


@dataclass
class Num:
    concept: str  # code value of the concept name
    value: float
    unit: str
    derivation: str | None = None
    region: list[float] | None = None  # GraphicData of an INFERRED FROM SCOORD
    region_image: str | None = None  # the SOP Instance UID that SCOORD is selected from


@dataclass
class Group:
    identifier: str
    finding: str | None
    nums: list[Num] = field(default_factory=list)
    evaluations: dict[str, str] = field(default_factory=dict)  # concept code -> value code
    comments: list[str] = field(default_factory=list)
    texts: dict[str, str] = field(default_factory=dict)  # concept code -> text (algorithm id)


def _code(item: pydicom.Dataset, keyword: str = "ConceptNameCodeSequence") -> str:
    code = item[keyword][0]
    for value in ("CodeValue", "LongCodeValue", "URNCodeValue"):
        if value in code:
            return str(code[value].value)
    raise ValueError(f"code without a value in {keyword}")


def _num(item: pydicom.Dataset) -> Num:
    mv = item.MeasuredValueSequence[0]
    num = Num(_code(item), float(mv.NumericValue), _code(mv, "MeasurementUnitsCodeSequence"))
    for child in item.get("ContentSequence", []):
        if child.ValueType == "CODE" and _code(child) == "121401":  # Derivation
            num.derivation = _code(child, "ConceptCodeSequence")
        if child.ValueType == "SCOORD" and child.RelationshipType == "INFERRED FROM":
            num.region = [float(v) for v in child.GraphicData]
            image = child.ContentSequence[0]
            num.region_image = str(image.ReferencedSOPSequence[0].ReferencedSOPInstanceUID)
    return num


def measurement_groups(sr: pydicom.Dataset) -> list[Group]:
    """The groups of the report's "Imaging Measurements" container, in order."""
    groups: list[Group] = []
    for item in sr.ContentSequence:
        if _code(item) != "126010":
            continue
        for g in item.ContentSequence:
            group = Group(identifier="", finding=None)
            for child in g.ContentSequence:
                concept = _code(child)
                if concept == "112039":
                    group.identifier = str(child.TextValue)
                elif concept == "121071":
                    group.finding = _code(child, "ConceptCodeSequence")
                elif child.ValueType == "NUM":
                    group.nums.append(_num(child))
                elif concept == "121106":
                    group.comments.append(str(child.TextValue))
                elif child.ValueType == "CODE":
                    group.evaluations[concept] = _code(child, "ConceptCodeSequence")
                elif child.ValueType == "TEXT":
                    group.texts[concept] = str(child.TextValue)
            groups.append(group)
    return groups


def document_evaluations(sr: pydicom.Dataset) -> tuple[dict[str, list[str]], list[str]]:
    """TID 1500's "Qualitative Evaluations": (concept code -> value codes, texts)."""
    codes: dict[str, list[str]] = {}
    texts: list[str] = []
    for item in sr.ContentSequence:
        if _code(item) != "C0034375":
            continue
        for child in item.ContentSequence:
            if child.ValueType == "CODE":
                codes.setdefault(_code(child), []).append(_code(child, "ConceptCodeSequence"))
            elif child.ValueType == "TEXT":
                texts.append(str(child.TextValue))
    return codes, texts


def ohif_ready(sr: pydicom.Dataset) -> list[str]:
    """Groups OHIF v3 cannot display (it reads a first coordinate of every group): identifiers."""
    bad = []
    for group in measurement_groups(sr):
        if not any(n.region for n in group.nums):
            bad.append(group.identifier)
    return bad


def pixelmed_sr_errors(path: Path) -> list[str] | None:
    """The "Error" lines of pixelmed's DicomSRValidator for ``path`` (None: not installed)."""
    java = shutil.which("java")
    if java is None or not PIXELMED_JAR.is_file():
        return None
    # Java 17's XPath limits break pixelmed's validator unless they are lifted
    proc = subprocess.run(
        [
            java,
            "-Djdk.xml.xpathExprOpLimit=0",
            "-Djdk.xml.xpathExprGrpLimit=0",
            "-Djdk.xml.xpathTotalOpLimit=0",
            "-cp",
            str(PIXELMED_JAR),
            "com.pixelmed.validate.DicomSRValidator",
            str(path),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    out = proc.stdout + proc.stderr
    if "Exception" in out and "Error" not in out:
        raise RuntimeError(f"pixelmed DicomSRValidator failed: {out[-2000:]}")
    return [line for line in out.splitlines() if line.startswith("Error")]
