import json
from pathlib import Path

import numpy as np
import pytest

from benchmark.evaluate import EvaluationError, evaluate_files, read_keys, read_scores, write_scores

KEYS = "filename\tcm-label\nb1\tbonafide\nb2\tbonafide\ns1\tspoof\ns2\tspoof\n"
SCORES = "filename\tcm-score\ns2\t-1.5\nb1\t2.0\ns1\t0.5\nb2\t1.0\n"


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def files(tmp_path):
    return _write(tmp_path / "scores.tsv", SCORES), _write(tmp_path / "keys.tsv", KEYS)


def _one_line(err: pytest.ExceptionInfo, path: Path) -> str:
    msg = str(err.value)
    assert "\n" not in msg
    assert msg.startswith(str(path))
    assert "Fix:" in msg
    return msg


def test_evaluate_files_joins_on_filename_and_writes_json(files, tmp_path):
    scores, keys = files
    out = tmp_path / "sub" / "metrics.json"
    m = evaluate_files(scores, keys, out)
    assert m["eer"] == 0.0 and m["auc"] == 1.0
    assert (m["n_bonafide"], m["n_spoof"]) == (2, 2)
    # s1 = 0.5 >= 0 is misclassified at the logit threshold
    assert m["accuracy"] == 0.75
    assert json.loads(out.read_text()) == m
    assert [p.name for p in out.parent.iterdir()] == ["metrics.json"]  # no temp left behind


def test_extra_columns_and_bom_and_blank_lines_are_fine(tmp_path):
    keys = _write(tmp_path / "k.tsv", "\ufefffilename\tcm-label\tcodec\nb\tbonafide\t-\ns\tspoof\tencodec\n\n")
    scores = _write(tmp_path / "s.tsv", "filename\tcm-score\nb\t1\ns\t0\n")
    assert evaluate_files(scores, keys, None)["eer"] == 0.0


def test_score_type_is_passed_through(files):
    assert evaluate_files(*files, None, score_type="other")["accuracy"] is None


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("", "got an empty file"),
        ("b1\t2.0\n", "bad header"),
        ("filename cm-score\nb1 2.0\n", "bad header"),
        ("filename\tscore\nb1\t2.0\n", "bad header"),
    ],
)
def test_bad_or_missing_score_header(tmp_path, text, fragment):
    path = _write(tmp_path / "scores.tsv", text)
    with pytest.raises(EvaluationError, match=fragment) as err:
        read_scores(path)
    assert "make the first line 'filename\\tcm-score'" in _one_line(err, path)


def test_bad_key_header(tmp_path, files):
    keys = _write(tmp_path / "keys.tsv", "filename\tlabel\nb1\tbonafide\n")
    with pytest.raises(EvaluationError, match="bad header") as err:
        evaluate_files(files[0], keys, None)
    _one_line(err, keys)


def test_missing_file(tmp_path):
    path = tmp_path / "nope.tsv"
    with pytest.raises(EvaluationError, match="scores file not found") as err:
        read_scores(path)
    _one_line(err, path)


def test_scores_not_in_keys_counts_and_names_first(tmp_path, files):
    scores = _write(tmp_path / "scores.tsv", SCORES + "x1.wav\t0.3\nx2.wav\t0.1\n")
    with pytest.raises(EvaluationError, match="2 filename\\(s\\) not in keys file .*first 'x1.wav'") as err:
        evaluate_files(scores, files[1], None)
    _one_line(err, scores)


def test_keys_without_scores_counts_and_names_first(tmp_path, files):
    scores = _write(tmp_path / "scores.tsv", "filename\tcm-score\nb1\t1\ns1\t0\n")
    with pytest.raises(EvaluationError, match="2 filename\\(s\\) of keys file .* have no score, first 'b2'") as err:
        evaluate_files(scores, files[1], None)
    _one_line(err, scores)


def test_duplicate_filenames_in_scores(tmp_path):
    path = _write(tmp_path / "scores.tsv", SCORES + "b1\t0.0\n")
    with pytest.raises(EvaluationError, match="1 duplicate filename\\(s\\), first 'b1'") as err:
        read_scores(path)
    _one_line(err, path)


def test_duplicate_filenames_in_keys(tmp_path):
    path = _write(tmp_path / "keys.tsv", KEYS + "s2\tspoof\n")
    with pytest.raises(EvaluationError, match="duplicate filename\\(s\\), first 's2'") as err:
        read_keys(path)
    _one_line(err, path)


@pytest.mark.parametrize("label", ["spoof", "bonafide"])
def test_key_file_with_one_class(tmp_path, label):
    path = _write(tmp_path / "keys.tsv", f"filename\tcm-label\na\t{label}\nb\t{label}\n")
    with pytest.raises(EvaluationError, match=f"only '{label}' trials") as err:
        read_keys(path)
    _one_line(err, path)


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "NaN"])
def test_non_finite_scores(tmp_path, value):
    path = _write(tmp_path / "scores.tsv", f"filename\tcm-score\nb1\t1.0\ns1\t{value}\n")
    with pytest.raises(EvaluationError, match="line 3 \\(s1\\): score is") as err:
        read_scores(path)
    _one_line(err, path)


def test_non_numeric_score(tmp_path):
    path = _write(tmp_path / "scores.tsv", "filename\tcm-score\nb1\tbonafide\n")
    with pytest.raises(EvaluationError, match="not a number") as err:
        read_scores(path)
    _one_line(err, path)


def test_missing_column(tmp_path):
    path = _write(tmp_path / "scores.tsv", "filename\tcm-score\nb1 1.0\n")
    with pytest.raises(EvaluationError, match="line 2 has 1 column") as err:
        read_scores(path)
    _one_line(err, path)


@pytest.mark.parametrize("label", ["bona-fide", "Bonafide", "1", "fake"])
def test_unknown_labels(tmp_path, label):
    path = _write(tmp_path / "keys.tsv", f"filename\tcm-label\na\tbonafide\nb\t{label}\n")
    with pytest.raises(EvaluationError, match=f"line 3 \\(b\\): unknown label '{label}'") as err:
        read_keys(path)
    assert "'bonafide' or 'spoof'" in _one_line(err, path)


def test_header_only(tmp_path):
    path = _write(tmp_path / "keys.tsv", "filename\tcm-label\n")
    with pytest.raises(EvaluationError, match="no keys rows") as err:
        read_keys(path)
    _one_line(err, path)


def test_write_read_round_trip_is_exact(tmp_path):
    rng = np.random.default_rng(1)
    scores = rng.normal(size=50) * 1e3
    names = [f"utt_{i:03d}.flac" for i in range(50)]
    path = tmp_path / "out" / "scores.tsv"
    write_scores(path, names, scores)
    got_names, got = read_scores(path)
    assert got_names == names
    assert np.array_equal(got, scores)
    assert path.read_text().startswith("filename\tcm-score\n")
    assert [p.name for p in path.parent.iterdir()] == ["scores.tsv"]


def test_write_scores_replaces_atomically(tmp_path, monkeypatch):
    path = tmp_path / "scores.tsv"
    write_scores(path, ["a"], [1.0])
    # a failure mid-write must leave the old file intact and no temp file behind
    import codecfake_build.atomic as atomic

    def boom(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(atomic.os, "replace", boom)
    with pytest.raises(OSError):
        write_scores(path, ["a", "b"], [2.0, 3.0])
    assert read_scores(path)[0] == ["a"]
    assert [p.name for p in tmp_path.iterdir()] == ["scores.tsv"]


def test_write_scores_keeps_nan_for_read_scores_to_report(tmp_path):
    path = tmp_path / "scores.tsv"
    write_scores(path, ["a", "b"], [1.0, float("nan")])
    with pytest.raises(EvaluationError, match="score is nan"):
        read_scores(path)


@pytest.mark.parametrize("bad", ["a\tb", "", " a", "a\nb"])
def test_write_scores_rejects_unwritable_names(tmp_path, bad):
    with pytest.raises(ValueError, match="cannot hold"):
        write_scores(tmp_path / "s.tsv", [bad], [0.0])


def test_write_scores_rejects_length_mismatch_and_duplicates(tmp_path):
    with pytest.raises(ValueError, match="2 filenames but 1 scores"):
        write_scores(tmp_path / "s.tsv", ["a", "b"], [0.0])
    with pytest.raises(EvaluationError, match="duplicate"):
        write_scores(tmp_path / "s.tsv", ["a", "a"], [0.0, 1.0])
