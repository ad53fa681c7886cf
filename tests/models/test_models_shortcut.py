"""models.shortcut: how far global image statistics alone predict the label, and the draw
weights and validation subset built from it."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from sklearn.metrics import roc_auc_score

from models.shortcut import (
    FEATURE_SIZE,
    adverse_mask,
    balancing_weights,
    global_features,
    main,
    read_weights,
    shortcut_scores,
)


def _chest(rng: np.random.Generator, bright_sides: bool) -> np.ndarray:
    """A 224² grey frame: body in the middle, side strips dark or bright, some texture."""
    a = 0.5 + 0.1 * rng.standard_normal((FEATURE_SIZE, FEATURE_SIZE))
    side = 0.7 if bright_sides else 0.02
    a[:, :20] = side
    a[:, -20:] = side
    return np.clip(a, 0, 1)


def test_features_see_the_side_strips_but_not_where_things_lie() -> None:
    rng = np.random.default_rng(0)
    dark, bright = _chest(rng, False), _chest(rng, True)
    fd, fb = global_features(dark), global_features(bright)
    assert fd.shape == fb.shape == (36,) and np.isfinite(fd).all()
    assert fb[-3] > fd[-3] + 0.5 and fb[-2] > fd[-2] + 0.5  # left and right strip means
    # a pure permutation of the rows keeps every histogram feature (no anatomy is read)
    shuffled = dark[rng.permutation(FEATURE_SIZE)]
    np.testing.assert_allclose(global_features(shuffled)[6:31], fd[6:31])


def test_scores_are_out_of_fold_by_patient() -> None:
    """Each patient has a random label and one feature value of its own shared by its images: a
    score that saw the patient's other images would read the label off that value."""
    rng = np.random.default_rng(1)
    patients = [f"p{i}" for i in range(60) for _ in range(4)]
    label_of = {p: int(rng.integers(0, 2)) for p in set(patients)}
    value_of = {p: rng.normal() for p in set(patients)}
    y = np.array([label_of[p] for p in patients], dtype=np.int64)
    x = np.array([[value_of[p], rng.normal()] for p in patients])
    s = shortcut_scores(x, y, patients)
    assert np.isfinite(s).all()
    assert roc_auc_score(y, s) < 0.7  # by patient: nothing to learn
    # a feature that carries the label is found out of fold
    x2 = np.column_stack([x, y + 0.3 * rng.normal(size=len(y))])
    assert roc_auc_score(y, shortcut_scores(x2, y, patients)) > 0.95
    with pytest.raises(ValueError, match="patients"):
        shortcut_scores(x[:8], y[:8], patients[:8])


def test_weights_favour_the_images_the_statistics_get_wrong() -> None:
    scores = np.array([0.05, 0.9, 0.95, 0.2, 0.5])
    labels = np.array([0, 0, 1, 1, 1])
    w = balancing_weights(scores, labels, clip=8.0)
    np.testing.assert_allclose(w, [1 / 0.95, 8.0, 1 / 0.95, 5.0, 2.0])
    assert w.min() >= 1.0
    assert adverse_mask(scores, labels, cut=0.3).tolist() == [False, True, False, True, True]
    with pytest.raises(ValueError):
        balancing_weights(scores, labels, clip=0.5)


def test_weights_file_is_checked(tmp_path: Path) -> None:
    good = tmp_path / "w.csv"
    good.write_text("path,weight\na.png,2\nb.png,1.5\n")
    assert read_weights(good) == {"a.png": 2.0, "b.png": 1.5}
    (tmp_path / "cols.csv").write_text("file,w\na.png,2\n")
    with pytest.raises(ValueError, match="columns"):
        read_weights(tmp_path / "cols.csv")
    (tmp_path / "zero.csv").write_text("path,weight\na.png,0\n")
    with pytest.raises(ValueError, match="> 0"):
        read_weights(tmp_path / "zero.csv")


def _labelled_set(root: Path, n_patients: int = 40) -> Path:
    """A tiny kermany-style labels.csv: pneumonias mostly with bright sides, normals dark."""
    rng = np.random.default_rng(2)
    rows = []
    for i in range(n_patients):
        label = "PNEUMONIA" if i % 2 else "NORMAL"
        for j in range(2):
            bright = (label == "PNEUMONIA") != (i % 10 >= 8)  # one patient in five against it
            rel = f"train/{label}/p{i}-{j}.png"
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            img = (_chest(rng, bright) * 255).astype(np.uint8)
            Image.fromarray(img).save(root / rel)
            rows.append({"path": rel, "label": label, "patient_id": f"p{i}", "split": "train"})
    rows.append({"path": "test/x.png", "label": "NORMAL", "patient_id": "t", "split": "test"})
    labels = root / "labels.csv"
    with labels.open("w", newline="") as f:
        wr = csv.DictWriter(f, fieldnames=list(rows[0]))
        wr.writeheader()
        wr.writerows(rows)
    return labels


def test_cli_writes_scores_and_weights_for_the_train_split_only(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    labels = _labelled_set(tmp_path / "data")  # test/x.png does not exist: never read
    out = tmp_path / "runs" / "shortcut.csv"
    sheet = tmp_path / "montage.png"
    assert main(["--labels", str(labels), "--out", str(out), "--montage", str(sheet)]) == 0
    with Image.open(sheet) as im:
        assert im.size == (6 * 112, 4 * 112)
    rows = list(csv.DictReader(out.open()))
    assert len(rows) == 80 and all(r["path"].startswith("train/") for r in rows)
    assert all(float(r["weight"]) >= 1 for r in rows)
    assert "global statistics alone reach AUC" in capsys.readouterr().out
    # the images whose side strips go against their label are drawn far more often
    w = {r["path"]: float(r["weight"]) for r in rows}
    against = [p for p in w if int(p.split("/p")[-1].split("-")[0]) % 10 >= 8]
    others = [w[p] for p in w if p not in against]
    assert np.median([w[p] for p in against]) > 3 * np.median(others)
    assert read_weights(out) == w


def test_cli_refuses_a_split_with_one_label(tmp_path: Path) -> None:
    labels = _labelled_set(tmp_path / "data")
    text = labels.read_text().splitlines()
    only_normal = [text[0]] + [r for r in text[1:] if ",NORMAL," in r]
    labels.write_text("\n".join(only_normal) + "\n")
    with pytest.raises(SystemExit) as e:
        main(["--labels", str(labels), "--out", str(tmp_path / "o.csv")])
    assert e.value.code == 2
