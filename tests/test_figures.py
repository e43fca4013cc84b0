"""Figure builders on tiny synthetic inputs, figure files with provenance, and the figures of a small
sweep of trained smoke runs."""
import json

import numpy as np
import pandas as pd
import pytest

from workbench.report import figures, viz


def _map(rng, K=2, T=4, N=5, W=200.0):
    xy = rng.uniform(0, W / 2, (T, N, 2))
    boxes = np.concatenate([xy, xy + rng.uniform(10, W / 2, (T, N, 2))], -1).astype(np.float32)  # (T, N, 4)
    scores = rng.normal(size=(K, T, N)).astype(np.float32)
    gt = boxes[None, :, 0].repeat(K, 0).astype(float)                                          # (K, T, 4)
    gt[1, 2] = np.nan
    return {"scores": scores, "temporal": np.full((K, T), 1 / T), "boxes": boxes, "chosen": scores.argmax(-1),
            "obj_class": np.array([3, 7]), "sentence": "add the onion and the garlic", "gt": gt}


def test_similarity_maps_draw_every_proposal_gt_and_choice():
    rng = np.random.default_rng(0)
    maps = {"stvg": _map(rng), "scl": _map(rng)}
    fig = viz.similarity_maps(maps, 1, {3: "onion", 7: "garlic"}, max_frames=3)
    frames, N = 3, 5
    gt_frames = sum(not np.isnan(maps["stvg"]["gt"][1, t]).any() for t in (0, 2, 3))   # frames 0, 2 (rounded), 3
    assert len(fig.layout.shapes) == 2 * (frames * (N + 1) + gt_frames)
    assert "garlic" in fig.layout.title.text
    # the most similar proposal is drawn last before the GT / chosen boxes, and it is the chosen one
    m = maps["stvg"]
    first = fig.layout.shapes[:N]
    top = m["boxes"][0, m["scores"][1, 0].argmax()]
    assert (first[-1].x0, first[-1].y0) == pytest.approx((top[0], top[1]))
    with pytest.raises(Exception, match="query 5 out of range"):
        viz.similarity_maps(maps, 5)


def _concepts(rng, classes=4, per=12, d=16, noise=0.1):
    centers = rng.normal(size=(classes, d))
    cls = np.repeat(np.arange(classes), per)
    return {"ef": centers[cls] + 0.01 * rng.normal(size=(len(cls), d)),
            "d": centers[cls] + noise * rng.normal(size=(len(cls), d)), "obj_class": cls,
            "sentence": np.array([f"sentence {i}" for i in range(len(cls))]),
            "seg_id": np.array([f"v_{i:02d}" for i in range(len(cls))])}


def test_concept_tsne_silhouette_tracks_cluster_quality():
    rng = np.random.default_rng(0)
    names = {i: f"class{i}" for i in range(4)}
    tight = viz.concept_tsne_points(_concepts(rng, noise=0.05), names)
    loose = viz.concept_tsne_points(_concepts(rng, noise=3.0), names)
    assert tight["silhouette"] > 0.5 > loose["silhouette"]
    assert tight["class_xy"].shape == (4, 2) and tight["obj_xy"].shape == (48, 2)
    fig = viz.concept_tsne_figure(tight, highlight=2)
    assert [t.name for t in fig.data if t.showlegend is not False] == ["3 other classes", "class2 (12)"]
    assert fig.data[0].text[0] == "class0: sentence 0"
    near = viz.nearest_sentences(tight, 2, k=5)
    assert (near["object"] == "class2").all() and near["cosine"].is_monotonic_decreasing


def test_concept_tsne_stays_legible_with_67_classes():
    """Only the most frequent classes get a color and a legend entry; the rest are grey, named on hover."""
    rng = np.random.default_rng(2)
    cls = np.concatenate([np.repeat(np.arange(67), 2), np.repeat([5, 9, 40], 10)])     # 5, 9, 40 most frequent
    conc = {"ef": rng.normal(size=(len(cls), 8)), "d": rng.normal(size=(len(cls), 8)), "obj_class": cls,
            "sentence": np.array([f"s{i}" for i in range(len(cls))]), "seg_id": np.array(["v"] * len(cls))}
    pts = viz.concept_tsne_points(conc, {i: f"c{i}" for i in range(67)})
    fig = viz.concept_tsne_figure(pts, top=3)
    legend = [t.name for t in fig.data if t.showlegend is not False]
    assert legend == ["64 other classes", "c40 (12)", "c5 (12)", "c9 (12)"]   # ties by name
    grey = fig.data[0]
    assert len(grey.x) == 64 * 2 and grey.text[0] == "c0: s0" and "rgba(150,150,150" in grey.marker.color
    assert len(fig.data[1].hovertext) == 64 and fig.data[1].hovertext[0] == "E_f(c0)"      # grey stars, named
    colors = {t.marker.color for t in fig.data[2:]}
    assert len(colors) == 3                                                                 # one color per class
    picked = viz.concept_tsne_figure(pts, highlight=[1, 2], focus=7)
    assert [t.name for t in picked.data if t.showlegend is not False] == ["64 other classes", "c1 (2)", "c2 (2)",
                                                                          "c7 (2)"]
    assert picked.data[-1].marker.size > picked.data[-3].marker.size                        # the focus class


def test_results_table_and_bars():
    df = pd.DataFrame([{"preset": "scl", "status": "ok", "testing_box_micro": 40.0, "paper_testing_box_micro": 48.6,
                        "testing_query_micro": 41.0, "paper_testing_query_micro": 50.61},
                       {"preset": "x", "status": "failed", "testing_box_micro": None,
                        "paper_testing_box_micro": None, "testing_query_micro": None,
                        "paper_testing_query_micro": None}])
    bars = viz.results_bars(df)
    assert [t.name for t in bars.data] == ["ours (mean ± std over seeds)", "paper"] * 2
    assert list(bars.data[0].x) == ["scl (n=1)"]
    table = viz.results_table(df)
    cells = table.data[0].cells.values
    assert list(cells[0]) == ["scl", "x"] and "40.00 | 48.60" in [c[0] for c in cells[3:]]


def test_bars_table_and_curves_from_per_seed_rows():
    rows = [{"preset": p, "seed": s, "label": f"{p} [MiniLM-L6]" if p == "scl" else p, "status": "ok", "error": "",
             "testing_box_micro": v, "testing_query_micro": v + 1, "paper_testing_box_micro": None,
             "paper_testing_query_micro": None}
            for p, vals in (("stvg", (40.0, 42.0, 44.0)), ("scl", (41.0, 41.0, 41.0))) for s, v in enumerate(vals)]
    df = pd.DataFrame(rows)
    bars = viz.results_bars(df)
    ours = bars.data[0]                                           # query micro = box micro + 1
    assert list(ours.x) == ["stvg (n=3)", "scl [MiniLM-L6] (n=3)"] and list(ours.y) == [43.0, 42.0]
    assert list(ours.error_y.array) == pytest.approx([2.0, 0.0])
    cells = viz.results_table(df).data[0].cells.values
    assert list(cells[1]) == ["3", "3"] and "42.00 ± 2.00" in list(cells[3:][7])
    curves = pd.DataFrame([{"preset": "stvg", "label": "stvg", "seed": s, "epoch": e, "val_box_micro": 10.0 * e + s}
                           for s in (0, 1) for e in range(3)])
    fig = viz.learning_curves(curves)
    mean = [t for t in fig.data if t.name == "stvg (n=2)"][0]
    assert list(mean.x) == [1, 2, 3] and list(mean.y) == pytest.approx([0.5, 10.5, 20.5])


def test_loss_curves_live_callbacks():
    live = viz.LiveLoss("t", live=False)
    for e in range(2):
        for s in range(3):
            live.on_step(e, s, {"total": 1.0 / (1 + 3 * e + s), "mil_f": 0.5})
        live.on_epoch({"epoch": e, "losses": {"total": 0.5, "mil_f": 0.5}, "val": {"box_micro": 10.0 + e}})
    fig = live.figure()
    names = [t.name for t in fig.data]
    assert "total" in names and "total (epoch mean)" in names and "val box_micro" in names
    epoch = next(t for t in fig.data if t.name == "total (epoch mean)")
    assert list(epoch.x) == [3, 6]


def test_save_figures_writes_png_pdf_html_and_provenance(tmp_path):
    import plotly.graph_objects as go

    fig = go.Figure(go.Bar(x=["a", "b"], y=[1, 2]))
    prov = figures.provenance("bars", {"k": 1}, [], seed=3)
    paths = figures.save_figures([(fig, "bars", prov)], tmp_path)
    assert sorted(p.name for p in paths) == ["bars.html", "bars.pdf", "bars.png", "bars.provenance.json"]
    assert (tmp_path / "bars.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (tmp_path / "bars.pdf").read_bytes()[:5] == b"%PDF-"
    assert "plotly" in (tmp_path / "bars.html").read_text()[:5000].lower()
    p = json.loads((tmp_path / "bars.provenance.json").read_text())
    assert p["parameters"] == {"k": 1} and p["seed"] == 3 and set(p["git"]) == {"sha", "dirty"}
    assert {"plotly", "kaleido", "torch", "numpy"} <= set(p["packages"])
    assert not list(tmp_path.glob(".*tmp*"))


@pytest.mark.slow
def test_sweep_figures_from_trained_runs(tmp_path):
    """A small sweep directory (runs trained through the same code path as 02_train) -> every figure."""
    from workbench import notebook as nb
    from workbench.experiments import sweep
    from workbench.io import write_json
    from workbench.prepare import prepare
    from workbench.train import config_for, run_preset

    data = prepare()
    sw = tmp_path / "sweep"
    for p in ("random", "stvg", "scl"):
        params = sweep.run_params(p, data, sw, nb.SMOKE)
        (sw / p).mkdir(parents=True)
        write_json(sw / p / sweep.PARAMS, params)
        if p == "random":
            run_preset(p, config_for(p, **nb.SMOKE, data=str(data)), params["out"])
        else:                                   # the notebooks' cached smoke runs (trained on first use)
            (sw / p / sweep.RUN).symlink_to(nb.smoke_run(p, data), target_is_directory=True)
    write_json(sw / "sweep.json", {"grid": "main", "data": str(data), "presets": ["random", "stvg", "scl"],
                                   "overrides": nb.SMOKE})
    paths = figures.sweep_figures(sw, tmp_path / "fig", tsne_segments=40, log=lambda s: None)
    names = {"results_table", "main_bars", "learning_curves", "similarity_maps", "concept_tsne"}
    assert {p.name for p in paths} == {f"{n}.{e}" for n in names for e in ("png", "pdf", "html", "provenance.json")}
    prov = json.loads((tmp_path / "fig" / "similarity_maps.provenance.json").read_text())
    assert [r["preset"] for r in prov["runs"]] == ["stvg", "scl"] and prov["parameters"]["segment"]
    tsne = json.loads((tmp_path / "fig" / "concept_tsne.provenance.json").read_text())
    assert tsne["seed"] == 0 and tsne["runs"][0]["preset"] == "scl" and tsne["parameters"]["objects"] > 0


@pytest.mark.parametrize("interactive", ["0", "1"])
def test_explorers_static_and_with_widgets(monkeypatch, capsys, interactive):
    from workbench import notebook as nb

    monkeypatch.setenv("WORKBENCH_INTERACTIVE", interactive)
    shown = []
    monkeypatch.setattr(nb, "show", shown.append)
    rng = np.random.default_rng(1)
    maps = {"stvg": {"a_00": _map(rng), "b_01": _map(rng)}, "scl": {"a_00": _map(rng), "b_01": _map(rng)}}
    nb.explore_similarity(maps, {3: "onion", 7: "garlic"})
    pts = viz.concept_tsne_points(_concepts(rng), {i: f"class{i}" for i in range(4)})
    nb.explore_concepts(pts, default_class=1, k=3)
    if interactive == "0":       # static: the default selection drawn directly
        kinds = [type(o).__name__ for o in shown]
        assert kinds == ["Figure", "Figure", "DataFrame"] and "static explorer" in capsys.readouterr().out
    else:                        # widgets: one box per explorer, redrawn on a new selection
        import ipywidgets as w

        boxes = [o for o in shown if isinstance(o, w.VBox)]
        assert len(boxes) == 2
        seg, query, frame = boxes[0].children[0].children
        seg.value, frame.value = "b_01", 2
        assert query.options[1][0] == "1: garlic" and frame.max == 3
        pick, colored, _ = boxes[1].children[0].children
        assert colored.value == (0, 1, 2, 3)            # 4 classes of 12 objects: all within the top 10
        pick.value = 3
        colored.value = (2,)
