"""`run all --only`: the label the CLI's own error message offers as an example
('aasist/codecfake-training_co-trained/s0') selects that one run, not also w2v2-aasist's and
wavlm-aasist's, whose labels merely contain it; globs, plain substrings and group names keep working."""

from __future__ import annotations

import pytest

from benchmark.matrix import Matrix, only_matches


@pytest.mark.parametrize("label,only,expected", [
    ("aasist/codecfake-training_co-trained/s0", "aasist/codecfake-training_co-trained/s0", True),
    ("w2v2-aasist/codecfake-training_co-trained/s0", "aasist/codecfake-training_co-trained/s0", False),
    ("wavlm-aasist/cross-method_codecfake/s1", "aasist/cross-method_codecfake", False),
    ("aasist/cross-method_codecfake/s1", "aasist/cross-method_codecfake", True),
    ("w2v2-aasist/inner-dataset_19la/s0", "inner-dataset_19la/s0", True),
    ("w2v2-aasist/inner-dataset_19la/s0", "aasist/*", False),
    ("aasist/inner-dataset_19la/s0", "aasist/*19la*", True),
    ("w2v2-lcnn/inner-dataset_19la/s0", "lcnn", True),
    ("aasist/inner-dataset_19la/s0", "19la", True),
    ("aasist/inner-dataset_19la/s0", "21df", False),
])
def test_only_matches(label, only, expected):
    assert only_matches(label, only) is expected


def test_an_exact_label_from_the_real_matrix_selects_one_run():
    matrix = Matrix.load()
    exps = matrix.experiments({}, only="aasist/codecfake-training_co-trained/s0")
    assert [e.label for e in exps] == ["aasist/codecfake-training_co-trained/s0"]
    assert {e.recipe.name for e in matrix.experiments({}, only="aasist/*")} == {"aasist"}
    assert {e.recipe.name for e in matrix.experiments({}, only="codecfake-sam")} == \
        {"w2v2-aasist-sam", "w2v2-aasist-asam", "w2v2-aasist-csam"}
