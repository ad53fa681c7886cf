"""The rule language: conditions, order, fallback, validation (plain functions, no peers)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydicom.dataset import Dataset

from node.config import ConfigError, Settings, load_settings, parse_tag
from node.instance_index import Received
from node.route import Decision, decide, explain

MODALITY = Received(
    source="dimse", calling_ae="CR_ROOM1", called_ae="SHARPRAY", peer_host="10.0.0.5"
)
PACS = Received(source="dimse", calling_ae="PACS", called_ae="SHARPRAY_AI", peer_host="10.0.0.9")
WEB = Received(source="dicomweb")


def header(**values: Any) -> Dataset:
    ds = Dataset()
    ds.Modality = "CR"
    ds.BodyPartExamined = "CHEST"
    ds.ViewPosition = "PA"
    ds.Rows = 2048
    ds.ImageType = ["ORIGINAL", "PRIMARY"]
    ds.PatientName = "DOE^JANE"
    for k, v in values.items():
        if v is None:
            delattr(ds, k)
        else:
            setattr(ds, k, v)
    return ds


def settings(rules: list[dict[str, Any]], fallback: dict[str, Any] | None = None) -> Settings:
    data: dict[str, Any] = {
        "destinations": {
            "pacs": {"type": "dimse", "ae_title": "PACS", "host": "127.0.0.1", "port": 4242},
            "archive": {"type": "dicomweb", "url": "http://127.0.0.1:8042/dicom-web"},
            "sender": {"type": "return_to_sender", "port": 104},
        },
        "routing": {
            "rules": rules,
            "fallback": fallback or {"name": "rest", "ignore": True},
        },
    }
    return Settings.model_validate(data)


def one(cond: dict[str, Any]) -> Settings:
    return settings(
        [
            {
                "name": "r",
                "match": {"attributes": [cond]},
                "process": "full",
                "send_results_to": "pacs",
            }
        ]
    )


@pytest.mark.parametrize(
    ("cond", "ds", "expected"),
    [
        ({"tag": "Modality", "equals": "CR"}, header(), True),
        ({"tag": "Modality", "equals": "DX"}, header(), False),
        ({"tag": "Modality", "in": ["DX", "CR"]}, header(), True),
        ({"tag": "Modality", "in": ["DX", "MG"]}, header(), False),
        ({"tag": "(0018,0015)", "equals": "CHEST"}, header(), True),  # BodyPartExamined by tag
        ({"tag": "00180015", "equals": "CHEST"}, header(), True),
        ({"tag": "ViewPosition", "regex": "^(PA|AP)$"}, header(), True),
        ({"tag": "ViewPosition", "regex": "^(PA|AP)$"}, header(ViewPosition="LL"), False),
        ({"tag": "ImageType", "equals": "PRIMARY"}, header(), True),  # any value of several
        ({"tag": "ImageType", "regex": "^DERIVED$"}, header(), False),
        ({"tag": "ViewPosition", "present": True}, header(), True),
        ({"tag": "ViewPosition", "present": True}, header(ViewPosition=""), False),  # empty
        ({"tag": "ViewPosition", "present": False}, header(ViewPosition=None), True),
        ({"tag": "Rows", "ge": 2048}, header(), True),
        ({"tag": "Rows", "gt": 2048}, header(), False),
        ({"tag": "Rows", "lt": 4096}, header(), True),
        ({"tag": "Rows", "le": 1024}, header(), False),
        ({"tag": "Rows", "equals": 2048}, header(), True),  # numeric equality
        ({"tag": "Rows", "ge": 1}, header(Rows=None), False),  # absent: no number to compare
        ({"tag": "Modality", "equals": "CR", "negate": True}, header(), False),
        ({"tag": "Modality", "in": ["MG"], "negate": True}, header(), True),
        ({"tag": "PatientAge", "regex": "^0[0-1][0-9]Y$"}, header(PatientAge="012Y"), True),
    ],
)
def test_attribute_conditions(cond: dict[str, Any], ds: Dataset, expected: bool) -> None:
    d = decide(one(cond), ds, MODALITY)
    assert (d.rule == "r") is expected, d


def test_rules_are_tried_in_order_and_the_fallback_takes_the_rest() -> None:
    s = settings(
        [
            {
                "name": "ignore-lateral",
                "match": {"attributes": [{"tag": "ViewPosition", "equals": "LL"}]},
                "ignore": True,
            },
            {
                "name": "room1",
                "match": {"calling_ae": "CR_ROOM1"},
                "process": "full",
                "send_results_to": ["pacs", "archive"],
            },
            {
                "name": "from-pacs",
                "match": {"calling_ae": ["PACS"], "called_ae": "SHARPRAY_AI"},
                "process": "report_only",
                "send_results_to": "sender",
            },
            {"name": "web", "match": {"source": "dicomweb"}, "forward_original_to": "pacs"},
        ],
        fallback={"name": "rest", "forward_original_to": ["archive"]},
    )
    d = decide(s, header(ViewPosition="LL"), MODALITY)
    assert d.rule == "ignore-lateral" and d.ignore and not d.pipeline
    d = decide(s, header(), MODALITY)
    assert (d.rule, d.pipeline, d.results, d.send_results_to) == (
        "room1",
        "full",
        ("sc", "overlay", "gsps", "sr"),
        ("pacs", "archive"),
    )
    d = decide(s, header(), PACS)
    assert (d.rule, d.results, d.send_results_to) == ("from-pacs", ("sr",), ("sender",))
    d = decide(s, header(), WEB)
    assert (d.rule, d.pipeline, d.forward_original_to) == ("web", None, ("pacs",))
    d = decide(s, header(), Received(source="dimse", calling_ae="OTHER"))
    assert d.fallback and d.rule == "rest" and d.forward_original_to == ("archive",)
    assert "forward original -> archive" in d.summary()


def test_decision_round_trips_through_the_job_detail() -> None:
    s = settings(
        [
            {
                "name": "study",
                "process": "full",
                "send_results_to": "pacs",
                "forward_original_to": "archive",
                "trigger": {"group": "study", "idle_s": 30},
            }
        ]
    )
    d = decide(s, header(), MODALITY)
    assert Decision.from_detail(d.to_detail()) == d
    assert (d.group, d.idle_s) == ("study", 30.0)


def test_dry_run_explains_each_rule_without_patient_data() -> None:
    s = settings(
        [
            {
                "name": "mammo",
                "match": {"attributes": [{"tag": "Modality", "equals": "MG"}]},
                "process": "full",
            },
            {
                "name": "by-name",
                "match": {"attributes": [{"tag": "PatientName", "regex": "^SMITH"}]},
                "process": "full",
            },
            {"name": "room1", "match": {"calling_ae": "CR_ROOM1"}, "process": "full"},
            {"name": "later", "process": "full"},
        ]
    )
    run = explain(s, header(), MODALITY)
    assert run.decision.rule == "room1"
    assert [(c.rule, c.matched) for c in run.checks] == [
        ("mammo", False),
        ("by-name", False),
        ("room1", True),
        ("later", True),
    ]
    assert run.checks[0].failed == "Modality == 'MG' does not hold"
    text = " ".join(str(c.failed) for c in run.checks)
    assert "DOE" not in text  # the value tested is never quoted


@pytest.mark.parametrize(
    ("routing", "message"),
    [
        (
            {
                "rules": [
                    {
                        "name": "x",
                        "match": {"attributes": [{"tag": "NoSuchKeyword", "equals": "1"}]},
                        "process": "full",
                    }
                ]
            },
            "NoSuchKeyword",
        ),
        (
            {
                "rules": [
                    {
                        "name": "x",
                        "match": {
                            "attributes": [{"tag": "Modality", "equals": "CR", "regex": "C"}]
                        },
                        "process": "full",
                    }
                ]
            },
            "exactly one",
        ),
        (
            {
                "rules": [
                    {
                        "name": "x",
                        "match": {"attributes": [{"tag": "Modality", "regex": "("}]},
                        "process": "full",
                    }
                ]
            },
            "regular expression",
        ),
        ({"rules": [{"name": "x", "process": "nope"}]}, "pipeline 'nope'"),
        (
            {"rules": [{"name": "x", "process": "full", "send_results_to": ["mars"]}]},
            "destination 'mars'",
        ),
        ({"rules": [{"name": "x", "forward_original_to": ["mars"]}]}, "destination 'mars'"),
        ({"rules": [{"name": "x"}]}, "does nothing"),
        ({"rules": [{"name": "x", "ignore": True, "process": "full"}]}, "ignore cannot"),
        (
            {
                "rules": [
                    {"name": "x", "send_results_to": ["pacs"], "forward_original_to": ["pacs"]}
                ]
            },
            "needs process",
        ),
        ({"rules": [{"name": "x", "process": "full"}, {"name": "x", "process": "full"}]}, "unique"),
        (
            {
                "rules": [
                    {"name": "x", "forward_original_to": ["pacs"], "trigger": {"group": "study"}}
                ]
            },
            "needs process",
        ),
        (
            {"fallback": {"name": "f", "match": {"calling_ae": "A"}, "process": "full"}},
            "fallback.match",
        ),
        (
            {"rules": [{"name": "x", "match": {"source": "carrier-pigeon"}, "process": "full"}]},
            "source",
        ),
    ],
)
def test_bad_rules_are_refused_at_start_naming_the_problem(
    tmp_path: Path, routing: dict[str, Any], message: str
) -> None:
    import yaml

    cfg = tmp_path / "c.yaml"
    routing.setdefault("fallback", {"name": "fallback", "process": "full"})
    cfg.write_text(yaml.safe_dump({"routing": routing}))
    with pytest.raises(ConfigError) as e:
        load_settings(cfg, environ={})
    assert message in str(e.value)


def test_destination_types_and_tags() -> None:
    s = Settings.model_validate(
        {
            "destinations": {
                "web": {
                    "type": "dicomweb",
                    "url": "https://pacs/dicom-web/",
                    "auth": {"type": "bearer", "token_env": "T"},
                },
                "tls": {
                    "type": "dimse",
                    "ae_title": "P",
                    "host": "h",
                    "port": 2762,
                    "tls": {"enabled": True},
                },
            },
            "routing": {
                "fallback": {"name": "f", "process": "full", "send_results_to": ["web", "tls"]}
            },
        }
    )
    assert s.destinations["web"].describe() == "STOW-RS https://pacs/dicom-web"
    assert s.destinations["tls"].describe() == "P@h:2762 (TLS)"
    with pytest.raises(ValueError, match="basic auth needs"):
        Settings.model_validate(
            {
                "destinations": {
                    "w": {"type": "dicomweb", "url": "http://x", "auth": {"type": "basic"}}
                }
            }
        )
    assert parse_tag("Modality") == parse_tag("(0008,0060)") == parse_tag("0008,0060") == 0x00080060


def test_the_examples_in_docs_routing_md_are_valid_configurations() -> None:
    import re

    import yaml

    text = (Path(__file__).resolve().parents[2] / "docs" / "routing.md").read_text()
    blocks = [yaml.safe_load(b) for b in re.findall(r"```yaml\n(.+?)```", text, re.S)]
    destinations = next(b for b in blocks if "destinations" in b and "routing" not in b)
    examples = [b for b in blocks if "routing" in b]
    assert len(examples) == 2
    for ex in examples:
        data = {"destinations": {**destinations["destinations"], **ex.get("destinations", {})}}
        data["routing"] = ex["routing"]
        s = Settings.model_validate(data)
        assert s.routing.fallback.name
    pipelines = next(b for b in blocks if "pipelines" in b)
    assert Settings.model_validate(pipelines).pipelines["viewer"].results[1] == "overlay"


def _own_result(manufacturer: str = "SharpRay", purpose: str = "109102") -> Dataset:
    from pydicom.sequence import Sequence

    ds = Dataset()
    ds.Modality = "DX"
    code = Dataset()
    code.CodeValue, code.CodingSchemeDesignator, code.CodeMeaning = purpose, "DCM", "x"
    item = Dataset()
    item.Manufacturer = manufacturer
    item.PurposeOfReferenceCodeSequence = Sequence([code])
    ds.ContributingEquipmentSequence = Sequence([item])
    return ds


def test_the_nodes_own_results_are_not_processed_again() -> None:
    s = Settings.model_validate({"routing": {"fallback": {"name": "all", "process": "full"}}})
    received = Received(source="dimse", calling_ae="PACS", called_ae="SHARPRAY")
    own = decide(s, _own_result(), received)
    assert own.ignore and own.rule == "own-result" and "own result" in own.summary()
    assert explain(s, _own_result(), received).decision == own
    # another vendor's processing, or our name as a mere source: routed as usual
    for other in (_own_result("Other AI"), _own_result(purpose="109101"), Dataset()):
        assert decide(s, other, received).pipeline == "full"
    off = Settings.model_validate(
        {"routing": {"ignore_own_results": False, "fallback": {"name": "all", "process": "full"}}}
    )
    assert decide(off, _own_result(), received).pipeline == "full"


def test_real_result_objects_are_recognised_as_own(tmp_path: Path) -> None:
    """Every kind of object the builders write carries the mark the guard reads."""
    import warnings

    import numpy as np
    import pydicom

    from models.manifest import CodedConcept
    from node.config import ResultSettings
    from node.pipeline.outputs import build_results
    from node.pipeline.results.inputs import Analysis, Finding, ModelInfo, Producer
    from tests.support.synthetic import make_cr

    src = make_cr(tmp_path / "src.dcm", 64, 64, seed=1)
    info = ModelInfo("m", "1.0", "2.25.1", True)
    heat = np.zeros((64, 64), np.float32)
    heat[20:40, 20:40] = 1
    code = CodedConcept(value="233604007", scheme="SCT", meaning="Pneumonia")
    finding = Finding("PNEUMONIA", code, 0.9, True)
    analysis = Analysis(
        source=pydicom.dcmread(tmp_path / "src.dcm"),
        corrected=src.pixel_array,
        deblur_model=info,
        classifier_model=info,
        findings=[finding],
        heatmap=heat,
    )
    s = Settings()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        results = dict(build_results(analysis, ResultSettings(), Producer()))
    assert set(results) == {"sc", "overlay", "gsps", "seg", "sr"}
    received = Received(source="dicomweb")
    for kind, ds in results.items():
        assert decide(s, ds, received).rule == "own-result", kind
    assert decide(s, analysis.source, received).rule == s.routing.fallback.name
