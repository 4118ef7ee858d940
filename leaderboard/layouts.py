"""The papers' table layouts: which test sets are the columns, which averages
follow them, and which metric fills the cells.

A run's ``test_data`` names its test set as ``<dataset>:<condition>`` (e.g.
``codecfake:C3``, ``asvspoof2021-df:neural_vocoder_autoregressive``,
``wavefake:ljspeech_melgan``) or just ``<dataset>`` for a pooled set
(``in-the-wild``).  A column matches a run when the whole name or its
condition part is one of the column's aliases, so a protocol file only has to
use the dataset and condition names that the readers already produce.

Averages are computed per row from the column means, and only when every
column they cover has a value: a partly filled row must not print an average
that looks comparable to a full one.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Sequence
from dataclasses import dataclass

from leaderboard.collect import LoadedRun


@dataclass(frozen=True)
class Column:
    header: str
    aliases: tuple[str, ...]

    def matches(self, test_data: str) -> bool:
        return test_data in self.aliases or test_data.rsplit(":", 1)[-1] in self.aliases


@dataclass(frozen=True)
class Average:
    header: str
    #: Headers of the columns averaged; empty = every data column of the table.
    of: tuple[str, ...] = ()
    #: With ``of`` empty: only the per-condition columns (``<test>:<condition>`` runs), so a
    #: pooled test set's column does not enter an average over synthesizers.
    conditions_only: bool = False


@dataclass(frozen=True)
class Layout:
    name: str
    title: str
    paper: str
    #: fnmatch patterns of the protocol names this layout tabulates.
    protocols: tuple[str, ...]
    #: Metrics shown in each cell, e.g. ("eer",) or ("auc", "eer") for "AUC / EER".
    metrics: tuple[str, ...]
    #: Fixed columns in the paper's order; None = one column per test set found.
    columns: tuple[Column, ...] | None
    averages: tuple[Average, ...] = ()
    #: True: one sub-column per metric ("melgan AUC", "melgan EER") instead of "AUC / EER" cells.
    metric_columns: bool = False

    def applies_to(self, protocol: str) -> bool:
        return any(fnmatch.fnmatchcase(protocol, p) for p in self.protocols)

    def columns_for(self, runs: Sequence[LoadedRun]) -> tuple[Column, ...]:
        """The fixed columns, or one per test set found: per-condition runs first (grouped by
        test set), then pooled ones.  A condition is named alone when one test set has
        conditions, else as ``<test>:<condition>`` so two test sets' "melgan" stay apart."""
        if self.columns is not None:
            return self.columns
        tests = sorted({r.record.test_data for r in runs})
        conditional = [t for t in tests if ":" in t]
        pooled = [t for t in tests if ":" not in t]
        several = len({t.rsplit(":", 1)[0] for t in conditional}) > 1
        return (*(Column(t if several else t.rsplit(":", 1)[-1], (t,)) for t in conditional),
                *(Column(t, (t,)) for t in pooled))


_CODECS = tuple(Column(f"C{i}", (f"C{i}", f"codecfake:C{i}", f"codecfake-C{i}")) for i in range(1, 8))

CODECFAKE = Layout(
    name="codecfake",
    title="Codecfake: EER (%) on ASVspoof 2019 LA, In-the-Wild and the codec conditions C1-C7",
    paper="Xie et al., 'The Codecfake Dataset and Countermeasures for the Universally Detection of "
          "Deepfake Audio', IEEE/ACM TASLP 2025, Table (training settings x test sets)",
    protocols=("*codecfake*",),
    metrics=("eer",),
    columns=(Column("19LA", ("19LA", "asvspoof2019-la", "asvspoof2019-la:eval")),
             Column("ITW", ("ITW", "in-the-wild")),
             *_CODECS),
    averages=(Average("CAVG", tuple(c.header for c in _CODECS)), Average("AVG")),
)

FDADD = Layout(
    name="fdadd",
    title="FD-ADD: AUC and EER (%) per synthesizer",
    paper="Zhang et al., 'Robust AI-Synthesized Speech Detection Using Feature Decomposition Learning "
          "and Synthesizer Feature Augmentation', IEEE TIFS 2025, Tables II-VIII (inner-dataset, "
          "cross-method, ASVspoof 2021 DF, cross-dataset, cross-language: AUC and EER per synthesizer)",
    # Every FD-ADD task of configs/matrix.yaml's fdadd group.
    protocols=("*wavefake*", "*librisevoc*", "*decro*", "inner-dataset_21df"),
    metrics=("auc", "eer"),
    columns=None,
    averages=(Average("Average", conditions_only=True),),
    metric_columns=True,
)

#: (header as in the ASVspoof 2021 summary tables, vocoder field of the DF trial_metadata.txt keys)
DF21_CATEGORIES = (("Traditional", "traditional_vocoder"), ("Wav.Concat.", "waveform_concatenation"),
                   ("Neural AR", "neural_vocoder_autoregressive"),
                   ("Neural non-AR", "neural_vocoder_nonautoregressive"), ("Unknown", "unknown"))

ASVSPOOF2021_DF = Layout(
    name="asvspoof2021-df",
    title="ASVspoof 2021 DF: EER (%) per vocoder category",
    paper="Liu et al., 'ASVspoof 2021: Towards Spoofed and Deepfake Speech Detection in the Wild', "
          "IEEE/ACM TASLP 2023 (vocoder categories of the DF keys)",
    protocols=("*21df*", "*2021-df*", "*2021df*", "cross-dataset_19la"),
    metrics=("eer",),
    columns=(*(Column(header, (field,)) for header, field in DF21_CATEGORIES),
             Column("Pooled", ("pooled", "21DF", "asvspoof2021-df"))),
)

LAYOUTS: tuple[Layout, ...] = (CODECFAKE, FDADD, ASVSPOOF2021_DF)
