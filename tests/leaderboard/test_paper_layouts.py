"""Paper-layout tables (Codecfake, FD-ADD, ASVspoof 2021 DF) in four formats, and PNG plots."""

import csv
import io
import json
from pathlib import Path

import numpy as np
import pytest

from benchmark.evaluate import write_keys, write_scores
from benchmark.metrics import compute_eer
from leaderboard import build, collect_runs
from leaderboard.layouts import ASVSPOOF2021_DF, CODECFAKE, FDADD
from leaderboard.paper_tables import latex_escape, paper_table, to_csv, to_html, to_latex, to_markdown
from leaderboard.plots import det_points

DATE = "2026-01-01 00:00 UTC"
CODECFAKE_COLS = ["19LA", "ITW", *(f"C{i}" for i in range(1, 8))]


def put_run(root: Path, name: str, **fields) -> Path:
    doc = {"kind": "codecfake-bench-run", "run_id": name, "model": "w2v2-aasist", "train_data": "codecfake-train",
           "test_data": "codecfake:C1", "protocol": "codecfake-codec-trained", "seed": 0,
           "commit": "0123456789abcdef", "date": "2026-01-01T00:00:00Z",
           "metrics": {"eer": 1.0, "auc": 0.99, "min_dcf": 0.1}, "config": {}}
    doc.update(fields)
    path = root / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc))
    return path


@pytest.fixture
def codecfake_runs(tmp_path):
    root = tmp_path / "runs"
    tests = {"19LA": "asvspoof2019-la", "ITW": "in-the-wild", **{f"C{i}": f"codecfake:C{i}" for i in range(1, 8)}}
    for seed, offset in [(0, 0.0), (1, 2.0)]:
        for k, (col, test) in enumerate(tests.items()):
            put_run(root, f"full-s{seed}-{col}", test_data=test, seed=seed,
                    metrics={"eer": k + offset, "auc": 0.9, "min_dcf": 0.2})
    # a per-condition run of C1 whose condition is also called C1 must not join the pooled C1 cell
    put_run(root, "full-s0-C1-cond", test_data="C1:C1", seed=0, metrics={"eer": 50.0, "auc": 0.5, "min_dcf": 1.0})
    # a second model without C7: its averages must stay blank
    for k, (col, test) in enumerate(list(tests.items())[:-1]):
        put_run(root, f"part-{col}", model="lcnn", test_data=test, metrics={"eer": 10.0, "auc": 0.8, "min_dcf": 0.5})
    return root


def test_codecfake_layout_columns_averages_and_seeds(codecfake_runs):
    runs = collect_runs(codecfake_runs).runs
    table = paper_table(CODECFAKE, runs, "codecfake-codec-trained", DATE)
    assert table.headers == ["Model", "Train data", "Seeds", *CODECFAKE_COLS, "CAVG", "AVG"]
    rows = {r[0]: r for r in table.rows}
    full = rows["w2v2-aasist"]
    assert full[2] == "0, 1"
    # column k holds EER k (seed 0) and k + 2 (seed 1): mean k + 1, sample std sqrt(2)
    assert full[3] == "1.00 ± 1.41" and full[11] == "9.00 ± 1.41"
    # CAVG = mean over C1..C7 of (k+1) for k = 2..8 -> 6; AVG over all 9 columns -> 5
    assert full[12] == "6.00" and full[13] == "5.00"
    part = rows["lcnn"]
    assert part[11] == "–" and part[12] == "–" and part[13] == "–"
    assert "seeds: 0, 1" in table.provenance and "commit(s): 0123456789" in table.provenance
    assert "built 2026-01-01" in table.provenance


def test_renderings_carry_the_same_numbers_and_provenance(codecfake_runs):
    table = paper_table(CODECFAKE, collect_runs(codecfake_runs).runs, "codecfake-codec-trained", DATE)
    md, tex, html, text = to_markdown(table), to_latex(table), to_html(table), to_csv(table)
    for out in (md, tex, html, text):
        assert "0123456789" in out and "2026-01-01" in out
    assert "| w2v2-aasist | codecfake-train | 0, 1 | 1.00 ± 1.41 |" in md
    assert r"1.00 $\pm$ 1.41" in tex and r"\begin{tabular}{lll" in tex and r"\toprule" in tex
    assert "<td>1.00 ± 1.41</td>" in html and html.startswith("<!DOCTYPE html>")
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0][3:] == [*CODECFAKE_COLS, "CAVG", "AVG"] and rows[-1][0].startswith("# Protocol")


def test_latex_escaping_and_html_escaping():
    assert latex_escape("a_b & 50% #1 {x}") == r"a\_b \& 50\% \#1 \{x\}"
    from leaderboard.paper_tables import PaperTable

    t = PaperTable(CODECFAKE, "p<1>", ["Model", "Train data", "Seeds"], [["<b>", "x", "0"]], "prov")
    assert "&lt;b&gt;" in to_html(t) and "<b>" not in to_html(t).split("<tbody>")[1]


def test_fdadd_layout_shows_auc_and_eer_per_synthesizer_with_average(tmp_path):
    root = tmp_path / "runs"
    for voc, (a, e) in {"ljspeech_melgan": (0.99, 2.0), "ljspeech_hifiGAN": (0.95, 6.0)}.items():
        put_run(root, voc, model="fd-add", train_data="wavefake-train", protocol="wavefake-inner",
                test_data=f"wavefake:{voc}", metrics={"eer": e, "auc": a, "min_dcf": 0.1})
    table = paper_table(FDADD, collect_runs(root).runs, "wavefake-inner", DATE)
    assert FDADD.applies_to("wavefake-inner") and not FDADD.applies_to("codecfake-codec-trained")
    assert table.headers[3:] == ["ljspeech_hifiGAN AUC", "ljspeech_hifiGAN EER", "ljspeech_melgan AUC",
                                 "ljspeech_melgan EER", "Average AUC", "Average EER"]
    assert table.rows[0][3:] == ["0.9500", "6.00", "0.9900", "2.00", "0.9700", "4.00"]


FDADD_TASKS = ["inner-dataset_wavefake", "inner-dataset_librisevoc", "inner-dataset_decro-en", "inner-dataset_decro-zh",
               "inner-dataset_21df", "cross-method_wavefake", "cross-method_wavefake-melgan-large",
               "cross-method_librisevoc", "cross-dataset_librisevoc",
               "cross-language_wavefake", "cross-language_decro-en-to-zh", "cross-language_decro-zh-to-en"]


def test_fdadd_layout_covers_every_fdadd_task_of_the_matrix():
    from benchmark.matrix import Matrix

    matrix = Matrix.load()
    fdadd = {e.protocol.name for e in matrix.experiments({}, only="fdadd")}
    assert fdadd == set(FDADD_TASKS)
    assert all(FDADD.applies_to(p) for p in FDADD_TASKS)


def test_fdadd_layout_mean_std_over_ten_seeds_pooled_kept_out_of_the_average(tmp_path):
    root = tmp_path / "runs"
    proto = "cross-method_librisevoc"
    for seed in range(10):
        for voc, (a, e) in {"diffwave": (0.90, 10.0), "wavegrad": (0.80, 20.0)}.items():
            put_run(root, f"{voc}-s{seed}", model="rawnet2-voc", train_data="librisevoc-train", protocol=proto,
                    seed=seed, test_data=f"LibriSeVoc-unseen:{voc}",
                    metrics={"eer": e + (seed % 2), "auc": a, "min_dcf": 0.1})
        put_run(root, f"pooled-s{seed}", model="rawnet2-voc", train_data="librisevoc-train", protocol=proto,
                seed=seed, test_data="LibriSeVoc-unseen", metrics={"eer": 50.0, "auc": 0.5, "min_dcf": 1.0})
    table = paper_table(FDADD, collect_runs(root).runs, proto, DATE)
    assert table.headers[3:] == ["diffwave AUC", "diffwave EER", "wavegrad AUC", "wavegrad EER",
                                 "LibriSeVoc-unseen AUC", "LibriSeVoc-unseen EER", "Average AUC", "Average EER"]
    (row,) = table.rows
    assert row[2] == "0, 1, 2, 3, 4, 5, 6, 7, 8, 9"
    # EER alternates e, e + 1 over the seeds: mean e + 0.5, sample std sqrt(10 * 0.25 / 9) = 0.527
    assert row[3:9] == ["0.9000 ± 0.0000", "10.50 ± 0.53", "0.8000 ± 0.0000", "20.50 ± 0.53",
                        "0.5000 ± 0.0000", "50.00 ± 0.00"]
    assert row[9:] == ["0.8500", "15.50"]  # over the synthesizers only, not the pooled set
    md = to_markdown(table)
    assert "| diffwave AUC | diffwave EER |" in md and "AUC and EER (%), one column each" in md


def test_fdadd_layout_names_conditions_by_test_set_when_several(tmp_path):
    root = tmp_path / "runs"
    proto = "cross-dataset_librisevoc"
    for test in ("WaveFake:melgan", "DECRO-EN:melgan", "DECRO-ZH", "WaveFake"):
        put_run(root, test.replace(":", "-"), model="wav2clip", train_data="librisevoc-train", protocol=proto,
                test_data=test, metrics={"eer": 5.0, "auc": 0.95, "min_dcf": 0.1})
    table = paper_table(FDADD, collect_runs(root).runs, proto, DATE)
    heads = [h.rsplit(" ", 1)[0] for h in table.headers[3::2]]
    assert heads == ["DECRO-EN:melgan", "WaveFake:melgan", "DECRO-ZH", "WaveFake", "Average"]


def test_asvspoof2021_df_layout_uses_the_official_vocoder_categories(tmp_path):
    root = tmp_path / "runs"
    put_run(root, "ar", protocol="19la-to-21df", test_data="asvspoof2021-df:neural_vocoder_autoregressive",
            metrics={"eer": 12.0, "auc": 0.9, "min_dcf": 0.3})
    put_run(root, "pooled", protocol="19la-to-21df", test_data="asvspoof2021-df",
            metrics={"eer": 8.0, "auc": 0.9, "min_dcf": 0.3})
    table = paper_table(ASVSPOOF2021_DF, collect_runs(root).runs, "19la-to-21df", DATE)
    assert table.headers[3:] == ["Traditional", "Wav.Concat.", "Neural AR", "Neural non-AR", "Unknown", "Pooled"]
    assert table.rows[0][3:] == ["–", "–", "12.00", "–", "–", "8.00"]


def test_build_writes_paper_tables_heatmap_and_det_curves(tmp_path):
    root = tmp_path / "runs"
    rng = np.random.default_rng(0)
    names = [f"u{i}" for i in range(300)]
    scores = np.r_[rng.normal(2, 1, 100), rng.normal(0, 1, 100), rng.normal(-1, 1, 100)]
    bona = np.r_[np.ones(100, bool), np.zeros(200, bool)]
    conds = ["bonafide"] * 100 + ["C1"] * 100 + ["C2"] * 100
    write_scores(root / "eval" / "scores.tsv", names, scores)
    write_keys(root / "eval" / "keys.tsv", names, bona, conds)
    art = {"scores": "eval/scores.tsv", "keys": "eval/keys.tsv"}
    for c, sl in (("C1", slice(100, 200)), ("C2", slice(200, 300))):
        eer = 100 * compute_eer(scores[:100], scores[sl])[0]
        put_run(root, f"run-{c}", test_data=f"codecfake:{c}", artifacts={**art, "condition": c},
                metrics={"eer": eer, "auc": 0.9, "min_dcf": 0.1})
    result = build(root, tmp_path / "board", build_date=DATE)
    names_out = sorted(p.name for p in result.paper_tables)
    assert names_out == [f"codecfake-codecfake-codec-trained.{x}" for x in ("csv", "html", "md", "tex")]
    pngs = sorted(p.name for p in result.plots)
    assert pngs == ["det-codecfake-codec-trained-codecfake_C1.png", "det-codecfake-codec-trained-codecfake_C2.png",
                    "heatmap-codecfake-codec-trained.png"]
    import matplotlib.image as mpimg

    for p in result.plots:
        assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and mpimg.imread(p).shape[0] > 100
    # the DET curve of a condition run uses all bona fide + only that condition's spoofs
    run = next(r for r in collect_runs(root).runs if r.record.test_data == "codecfake:C2")
    far, frr = det_points(run)
    assert len(far) == 201
    i = int(np.argmin(np.abs(frr - far)))
    assert 100 * (far[i] + frr[i]) / 2 == pytest.approx(run.record.metrics["eer"])


def test_build_without_plots_and_bad_artifacts_field(tmp_path):
    root = tmp_path / "runs"
    put_run(root, "a")
    put_run(root, "bad", artifacts={"scores": 3})
    result = build(root, tmp_path / "board", build_date=DATE, plots=False)
    assert result.plots == () and result.n_runs == 1
    assert any("artifacts" in w for w in result.warnings)
