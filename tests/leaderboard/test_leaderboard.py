import csv
import io
import json
import statistics
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from leaderboard import RunRecord, RunSchemaError, build, collect_runs
from leaderboard.cli import main
from leaderboard.tables import format_mean_std

REPO = Path(__file__).resolve().parents[2]
DATE = "2025-02-01 10:00 UTC"


def run_doc(**over):
    doc = {
        "kind": "codecfake-bench-run",
        "run_id": "r",
        "model": "aasist",
        "train_data": "codecfake-train",
        "test_data": "codecfake-A1",
        "protocol": "codecfake",
        "seed": 0,
        "commit": "0123456789abcdef",
        "date": "2025-01-31T12:00:00Z",
        "metrics": {"eer": 5.0, "auc": 0.99, "min_dcf": 0.1},
        "config": {"lr": 0.0001},
    }
    doc.update(over)
    return doc


def put(root: Path, rel: str, doc) -> Path:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(doc if isinstance(doc, str) else json.dumps(doc))
    return path


@pytest.fixture
def runs(tmp_path):
    root = tmp_path / "runs"
    # three seeds of aasist on A1, one seed on A2; lcnn one seed on A1
    for seed, eer, auc in [(0, 4.0, 0.990), (1, 5.0, 0.980), (2, 9.0, 0.970)]:
        put(root, f"aasist/s{seed}/a1/run.json",
            run_doc(run_id=f"aasist-s{seed}-a1", seed=seed, metrics={"eer": eer, "auc": auc, "min_dcf": eer / 50, "accuracy": 0.9}))
    put(root, "aasist/s0/a2/run.json", run_doc(run_id="aasist-s0-a2", test_data="codecfake-A2", commit="fedcba9876543210"))
    put(root, "lcnn/run.json", run_doc(run_id="lcnn-a1", model="lcnn", seed=7, metrics={"eer": 12.5, "auc": 0.9, "min_dcf": 0.4}))
    put(root, "other/itw.json", run_doc(run_id="itw", protocol="in-the-wild", test_data="itw", seed=None))
    # not runs: ignored silently
    put(root, "aasist/s0/a1/metrics.json", {"eer": 1.0})
    put(root, "configs/list.json", [1, 2, 3])
    return root


def test_schema_round_trip_and_write(tmp_path):
    rec = RunRecord.from_json(run_doc())
    assert RunRecord.from_json(rec.to_json()) == rec
    assert rec.to_json() == run_doc()
    rec.write(tmp_path / "a" / "run.json")
    assert json.loads((tmp_path / "a" / "run.json").read_text()) == run_doc()
    without_config = {k: v for k, v in run_doc().items() if k != "config"}
    assert RunRecord.from_json(without_config).config == {}


@pytest.mark.parametrize(
    "over, fragment",
    [
        ({"kind": "other"}, '"kind"'),
        ({"model": ""}, '"model" must be a non-empty string'),
        ({"seed": "0"}, '"seed" must be an integer or null'),
        ({"seed": True}, '"seed" must be an integer or null'),
        ({"date": "yesterday"}, '"date"'),
        ({"metrics": {"eer": 1.0, "auc": 0.9}}, 'lacks "min_dcf"'),
        ({"metrics": {"eer": "1", "auc": 0.9, "min_dcf": 0.1}}, '"metrics.eer" must be a finite number'),
        ({"metrics": {"eer": float("nan"), "auc": 0.9, "min_dcf": 0.1}}, '"metrics.eer" must be a finite number'),
        ({"metrics": {"eer": 1.0, "auc": 99.0, "min_dcf": 0.1}}, '"metrics.auc" = 99.0 is outside'),
        ({"metrics": {"eer": 1.0, "auc": 0.9, "min_dcf": 0.1, "per_codec": {"C1": {"eer": 1.0}}}}, '"metrics.per_codec"'),
        ({"config": []}, '"config" must be an object'),
    ],
)
def test_schema_rejects(over, fragment):
    with pytest.raises(RunSchemaError, match=fragment.replace("(", "\\(").replace(".", "\\.")):
        RunRecord.from_json(run_doc(**over))


def test_schema_reports_missing_fields():
    doc = run_doc()
    del doc["protocol"], doc["seed"]
    with pytest.raises(RunSchemaError, match="missing field\\(s\\) protocol, seed"):
        RunRecord.from_json(doc)


def test_build_markdown_content(runs, tmp_path):
    result = build(runs, tmp_path / "out", build_date=DATE)
    assert result.n_runs == 6 and result.n_protocols == 2 and result.warnings == ()
    md = result.markdown_path.read_text()
    assert "## Protocol: codecfake" in md and "## Protocol: in-the-wild" in md
    for title in ("### EER (%)", "### AUC", "### min DCF"):
        assert md.count(title) == 2  # one per protocol

    eer_section = md.split("### EER (%)")[1].split("###")[0]
    # header line: seeds, data, commits, build date
    assert ("_Protocol codecfake · seeds: 0, 1, 2, 7 · train data: codecfake-train · "
            "test data: codecfake-A1, codecfake-A2 · commit(s): 0123456789, fedcba9876 · 5 run(s) · built " + DATE + "_") in eer_section
    assert "| Model | Train data | Seeds | codecfake-A1 | codecfake-A2 |" in eer_section
    mean, std = statistics.fmean([4.0, 5.0, 9.0]), statistics.stdev([4.0, 5.0, 9.0])
    assert f"| aasist | codecfake-train | 0, 1, 2 | {mean:.2f} ± {std:.2f} | 5.00 (seeds 0) |" in eer_section
    assert "| lcnn | codecfake-train | 7 | 12.50 | – |" in eer_section

    auc_section = md.split("### AUC")[1].split("###")[0]
    assert "| aasist | codecfake-train | 0, 1, 2 | 0.9800 ± 0.0100 | 0.9900 (seeds 0) |" in auc_section
    assert "built " + DATE in auc_section
    dcf_section = md.split("### min DCF")[1].split("###")[0]
    assert "| lcnn | codecfake-train | 7 | 0.4000 | – |" in dcf_section

    itw = md.split("## Protocol: in-the-wild")[1]
    assert "seeds: none" in itw
    assert "| aasist | codecfake-train | none | 5.00 |" in itw


def test_build_csv_long_format(runs, tmp_path):
    result = build(runs, tmp_path / "out", build_date=DATE)
    rows = list(csv.DictReader(io.StringIO(result.csv_path.read_text())))
    assert len(rows) == 6
    assert list(rows[0])[:12] == [
        "run_id", "protocol", "model", "train_data", "test_data", "seed",
        "commit", "date", "source", "eer", "auc", "min_dcf",
    ]
    assert "accuracy" in rows[0]
    by_id = {r["run_id"]: r for r in rows}
    s2 = by_id["aasist-s2-a1"]
    assert (s2["seed"], float(s2["eer"]), float(s2["min_dcf"]), s2["accuracy"]) == ("2", 9.0, 0.18, "0.9")
    assert s2["source"] == "aasist/s2/a1/run.json"
    assert by_id["lcnn-a1"]["accuracy"] == ""  # metric absent in that run
    assert by_id["itw"]["seed"] == ""


def test_bad_files_skipped_with_one_line_warning(runs, tmp_path):
    broken = put(runs, "broken/run.json", '{"kind": "codecfake-bench-run", ')
    invalid = put(runs, "invalid/run.json", run_doc(run_id="bad", metrics={"eer": 1.0}))
    collection = collect_runs(runs)
    assert len(collection.runs) == 6
    assert collection.n_other == 2
    assert len(collection.warnings) == 2
    by_path = {w.split(":")[0]: w for w in collection.warnings}
    assert "not valid JSON" in by_path[str(broken)]
    assert 'lacks "auc"' in by_path[str(invalid)]
    for w in collection.warnings:
        assert "\n" not in w and "skipped" in w and "Fix:" in w


def test_duplicate_seed_keeps_newer_run(runs):
    put(runs, "rerun/run.json", run_doc(run_id="aasist-s1-rerun", seed=1, date="2025-03-01", metrics={"eer": 6.0, "auc": 0.9, "min_dcf": 0.1}))
    collection = collect_runs(runs)
    ids = {r.record.run_id for r in collection.runs}
    assert "aasist-s1-rerun" in ids and "aasist-s1-a1" not in ids
    assert len(collection.warnings) == 1 and "kept the newer" in collection.warnings[0]


def test_cli_prints_outputs_and_warnings(runs, tmp_path, capsys):
    put(runs, "broken.json", "not json")
    out = tmp_path / "board"
    assert main(["build", str(runs), "--out", str(out), "--date", DATE]) == 0
    captured = capsys.readouterr()
    assert f"wrote {out / 'leaderboard.md'}" in captured.out
    assert f"wrote {out / 'leaderboard.csv'}" in captured.out
    assert f"warning: {runs / 'broken.json'}: not valid JSON" in captured.err
    assert sorted(p.name for p in out.iterdir()) == ["leaderboard.csv", "leaderboard.md", "plots"]


def test_cli_no_runs_is_an_error(tmp_path, capsys):
    put(tmp_path, "x.json", {"kind": "codecfake-bench-run"})
    assert main(["build", str(tmp_path), "--out", str(tmp_path / "o")]) == 1
    err = capsys.readouterr().err
    assert "warning:" in err and "error:" in err and "no valid run JSON" in err
    assert not (tmp_path / "o").exists()


def test_help_teaches_via_module_entry_point():
    proc = subprocess.run([sys.executable, "-m", "leaderboard", "build", "--help"], cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 0
    assert "codecfake-bench-run" in proc.stdout
    assert "python -m leaderboard build runs/ --out" in proc.stdout


def test_format_mean_std():
    assert format_mean_std([1.0], 2) == "1.00"
    assert format_mean_std([1.0, 3.0], 2) == "2.00 ± 1.41"


def test_markdown_escapes_pipes(tmp_path):
    put(tmp_path, "r.json", run_doc(model="a|b"))
    md = build(tmp_path, tmp_path / "o", build_date=DATE).markdown_path.read_text()
    assert "| a\\|b |" in md


def test_build_draws_embedding_maps_and_warns_on_a_missing_npz(tmp_path):
    root = tmp_path / "runs"
    rng = np.random.default_rng(0)
    emb = np.concatenate([rng.normal(0, 1, (20, 8)), rng.normal(4, 1, (20, 8))]).astype(np.float32)
    np.savez(root.mkdir(parents=True) or root / "emb.npz", embeddings=emb,
             labels=np.array(["bonafide"] * 20 + ["spoof"] * 20), conditions=np.array(["bonafide"] * 20 + ["A07"] * 20))
    put(root, "a.json", run_doc(run_id="a", model="wavespec", artifacts={"embeddings": "emb.npz"}))
    put(root, "b.json", run_doc(run_id="b", model="wavespec", seed=1, artifacts={"embeddings": "gone.npz"}))
    result = build(root, tmp_path / "board", build_date=DATE)
    maps = [p for p in result.plots if p.name.startswith("embeddings-")]
    assert [p.name for p in maps] == ["embeddings-wavespec-codecfake-codecfake-A1-0.png"] and maps[0].is_file()
    assert any("gone.npz" in w and "embeddings map skipped" in w for w in result.warnings)
