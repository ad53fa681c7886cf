"""bench.correction on a small frame: the node's two paths are both exercised and timed."""

from __future__ import annotations

import json
from pathlib import Path


def test_correction_bench_times_both_paths_against_skimage(tmp_path: Path) -> None:
    from bench import correction

    out = tmp_path / "correction.json"
    assert correction.main(["--size", "384", "--repeat", "1", "--out", str(out)]) == 0
    res = json.loads(out.read_text())
    assert res["size"] == 384 and set(res["scenes"]) == {"open", "collimated"}
    assert res["scenes"]["open"]["method"] == "wiener"
    assert res["scenes"]["collimated"]["method"] == "richardson-lucy"
    for scene in res["scenes"].values():
        assert scene["decision"] in ("blurred", "severe")
        assert abs(scene["estimated_px"] - res["motion_px"]) <= 2
        assert scene["deconvolve_s"] > 0 and scene["skimage_richardson_lucy_10_s"] > 0
        assert scene["peer_over_node"] > 0
    shape = res["shape_step"]
    assert shape["pixel_spacing_mm"] == 0.6 and shape["decision"] in ("blurred", "severe")
    assert shape["deconvolve_s"] > 0 and shape["deconvolve_with_shape_step_s"] > 0
    assert isinstance(shape["replaced"], bool)
    assert shape["retrieval_and_orientation_s"] > 0
    (cap,) = res["fallback_cap"]
    assert cap["size"] == 384 and cap["steps_cap_40"] == 40 and cap["steps_budget"] == 120
    assert cap["cap_40_s"] > 0 and cap["budget_s"] > 0
    fallback = res["detector_fallback"]
    assert fallback is not None and fallback["pixel_spacing_mm"] == 0.2
    for label in ("node", "retrieved_in_fallback"):
        assert fallback[label]["method"] in ("wiener", "richardson-lucy")
        assert fallback[label]["deconvolve_s"] > 0
    # as built, a ringing retrieved kernel gives way: the node's fallback never keeps it
    node = fallback["node"]
    assert not (node["replaced"] and node["method"] == "richardson-lucy")
    assert res["shadow_fallback"]["size"] == 384  # 1.6 mm of the frame: judged sharp there
    # the quiet fallback: a frame and its half, both taking the fallback; the node 10 steps,
    # the sixty-sixth round's setting the whole cap (both far under the 2048 x 1024 budget)
    quiet = res["quiet_fallback"]["frames"]
    assert [f["shape"] for f in quiet] == [[384, 384], [384, 192]]
    for f in quiet:
        assert f["decision"] in ("blurred", "severe") and f["estimate_s"] > 0
        assert f["node"]["method"] == f["quiet_steps"]["method"] == "richardson-lucy"
        assert (f["node"]["rl_steps"], f["quiet_steps"]["rl_steps"]) == (10, 40)


def test_the_shadow_fallback_is_timed_on_a_frame_the_gate_flags() -> None:
    from bench import correction

    shadow = correction.shadow_fallback(1, 1024)
    assert shadow["decision"] in ("blurred", "severe")
    whole = shadow["whole_frame"]
    assert whole["method"] == "richardson-lucy" and whole["shadow_share"] == 0
    assert shadow["node"]["method"] == "richardson-lucy"
    assert 0.2 < shadow["node"]["shadow_share"] < 0.4  # the band, the top, the marker
    assert shadow["node"]["deconvolve_s"] > 0


def test_the_clear_windows_are_timed_against_the_windows_as_built() -> None:
    from bench import correction

    row = correction.clear_windows(1, 672)
    assert row["size"] == 672 and row["pixel_spacing_mm"] == 0.2
    for name in ("sharp", "moved_under_shadows"):
        for label in ("windows_as_built", "node"):
            assert row[f"{name}_{label}"]["estimate_s"] > 0
    assert row["sharp_node"]["decision"] == "sharp"
    # a small frame whose shadows stayed sharp: the windows as built miss the 4 mm, the node's
    # clear ones see it
    assert row["moved_under_shadows_windows_as_built"]["decision"] == "sharp"
    moved = row["moved_under_shadows_node"]
    assert moved["decision"] in ("blurred", "severe") and 3.0 <= moved["motion_mm"] <= 5.0
