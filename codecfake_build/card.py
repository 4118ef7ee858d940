"""The dataset card (README.md) of a built dataset: YAML header that the HF
hub and ``load_dataset`` read, then what a user needs to cite and trust it."""

from __future__ import annotations

from typing import TYPE_CHECKING

from codecfake_build import __version__
from codecfake_build.atomic import atomic_write_text
from codecfake_build.schema import FEATURES, SPLITS

if TYPE_CHECKING:
    from codecfake_build.build import BuildConfig, BuildResult
    from codecfake_build.codecs import Codec


def write_card(cfg: "BuildConfig", result: "BuildResult", licences: dict[str, str], codecs: list["Codec"]) -> None:
    present = [s for s in SPLITS if result.split_rows.get(s)]
    yaml = ["---", "license: other", "task_categories:", "- audio-classification", "tags:",
            "- audio-deepfake-detection", "- codecfake", "configs:", "- config_name: default", "  data_files:"]
    for s in present:
        yaml += [f"  - split: {s}", f"    path: data/{s}-*"]
    yaml.append("---")
    lines = [
        "# Codecfake-style dataset", "",
        f"Built by codecfake-bench {__version__}: every source utterance is stored once as bona fide and once "
        "per codec as spoof, after re-synthesis through that codec. All audio is 16 kHz mono 16-bit FLAC.", "",
        "## Command", "", "```", cfg.to_command(), "```", "",
        f"Seed {cfg.seed}; split by {cfg.split_by}, ratios "
        f"{'/'.join(f'{r:.2f}' for r in cfg.ratios)} (train/validation/test); every codec copy of an utterance "
        "is in its source's split.", "",
        "## Splits", "", "| split | rows |", "|---|---|",
        *[f"| {s} | {result.split_rows.get(s, 0)} |" for s in SPLITS], "",
        f"Total {result.rows} rows: {result.bonafide} bona fide, {result.spoof} spoof. "
        f"Skipped inputs: {len(result.skipped)} (listed in build_report.json).", "",
        "## Codecs", "", "| codec | config | native rate | weights | licence |", "|---|---|---|---|---|",
        *[f"| {c.registry_name} | {c.config.name} | {c.native_rate} Hz | {c.weights_source} | {c.licence} |"
          for c in codecs], "",
        "## Sources", "", "| corpus | licence |", "|---|---|",
        *[f"| {name} | {lic} |" for name, lic in licences.items()], "",
        "## Features", "", "| column | type |", "|---|---|",
        *[f"| {k} | {type(v).__name__}{'(' + ', '.join(v.names) + ')' if hasattr(v, 'names') else ''} |"
          for k, v in FEATURES.items()], "",
        "`codec` is `none` on bona fide rows. `source_id` names the real utterance each row derives from.", "",
        "## Reading without torchcodec", "", "```python",
        "import datasets, io, soundfile as sf",
        "ds = datasets.load_dataset('DIR').cast_column('audio', datasets.Audio(decode=False))",
        "wave, sr = sf.read(io.BytesIO(ds['train'][0]['audio']['bytes']))", "```", "",
    ]
    atomic_write_text(cfg.out / "README.md", "\n".join(yaml + [""] + lines))
