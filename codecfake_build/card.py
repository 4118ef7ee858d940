"""The dataset card (README.md) of a built dataset: YAML header that the HF
hub and ``load_dataset`` read, then what a user needs to cite and trust it."""

from __future__ import annotations

from typing import TYPE_CHECKING

from codecfake_build import __version__
from codecfake_build.atomic import atomic_write_text
from codecfake_build.schema import OPTIONAL_QUALITY, SPLITS, dataset_features

QUALITY_SECTION = [
    "## Quality columns", "",
    "Each codec row is compared with the stored bona fide row of the same utterance (both 16 kHz, same length):",
    "",
    "- `logmel_distance`: mean |log10 mel(real) - log10 mel(fake)| over 80 Slaney mel bands (0-8 kHz) and all "
    "frames of an STFT with n_fft 1024, hop 256, Hann window, 512 samples of zero padding at each end, magnitude "
    "|X|, floor 1e-5. 0 for an identical copy; lower = closer to the source (harder to detect).",
    "- `si_snr_db`: scale-invariant SNR in dB of the fake against the source (both zero-mean; projection of the "
    "fake on the source over the residual). Higher = closer; unaffected by the fake's gain.", "",
]

#: One line per --quality measure, added to the quality section when the build computed it.
OPTIONAL_QUALITY_LINES = {
    "pesq": "- `pesq_wb`: ITU-T P.862.2 wide-band PESQ (MOS-LQO, about 1.04 to 4.64; 4.64 for an identical copy) "
            "of the fake against the source at 16 kHz, mode `wb`, from the `pesq` package (ITU reference C code). "
            "Higher = closer. Null where it has no value: clips shorter than 0.25 s, a silent source or fake, "
            "no speech detected.",
    "stoi": "- `stoi`: short-time objective intelligibility (Taal et al. 2011; not extended STOI), 0 to 1, from "
            "`pystoi` called at 16 kHz (it resamples to 10 kHz internally). Higher = closer. Null where fewer "
            "than about 0.4 s of speech remain after its 40 dB silence removal, or the source is silent.",
}


def quality_section(cfg: "BuildConfig", result: "BuildResult") -> list[str]:
    """The quality columns' definitions, with the --quality ones this build computed."""
    if not cfg.quality:
        return QUALITY_SECTION
    counts = result.quality_failure_counts()
    return [*QUALITY_SECTION[:-1], *[OPTIONAL_QUALITY_LINES[m] for m in cfg.quality], "",
            "Null values left by failed measures (reasons in build_report.json, `quality_failures`): "
            + ", ".join(f"`{OPTIONAL_QUALITY[m]}` {counts[m]}" for m in cfg.quality) + f" of {result.spoof} fakes.",
            ""]

BAD_INPUT_SECTION = [
    "## Bad input", "",
    "- Unreadable, empty, NaN/Inf and all-zero (silent) files are skipped and listed in build_report.json.",
    "- Clips shorter than one codec frame are zero-padded to one frame for the codec and trimmed back: every "
    "copy is exactly as long as its source.",
    "- Clipped recordings are kept (the clipping is part of the real audio) and flagged in `clipped`; audio over "
    "full scale is scaled to peak 0.99 before any codec; every stored waveform peaks at 0.99 or less.",
    "- Sources longer than `--max-seconds` are skipped with the reason in build_report.json; long clips below "
    "it are re-synthesised in overlapping 30 s windows (whole codec frames) and cross-faded over 1 s.", "",
]


def condition_section(cfg: "BuildConfig", result: "BuildResult") -> list[str]:
    """The conditions table (name, codec, splits, rows, mean quality) and, for presets, the choices made."""
    from codecfake_build.presets import get_preset

    def fmt(x: float | None, digits: int) -> str:
        return "n/a" if x is None else f"{x:.{digits}f}"

    optional = [OPTIONAL_QUALITY[m] for m in cfg.quality]
    titles = {"pesq_wb": "mean PESQ (wb)", "stoi": "mean STOI"}
    lines = ["## Conditions", "",
             "| condition | codec | splits | rows (train/validation/test) | mean log-mel distance | mean SI-SNR (dB) |"
             + "".join(f" {titles[c]} |" for c in optional),
             "|---|---|---|---|---|---|" + "---|" * len(optional)]
    for c in result.conditions:
        rows = "/".join(str(c["rows"].get(s, 0)) for s in SPLITS)
        where = "test only (unseen in training)" if c["test_only"] else "all"
        lines.append(f"| {c['condition']} | {c['codec']} | {where} | {rows} | "
                     f"{fmt(c.get('mean_logmel_distance'), 3)} | {fmt(c.get('mean_si_snr_db'), 2)} |"
                     + "".join(f" {fmt(c.get('mean_' + col), 3)} |" for col in optional))
    lines.append("")
    if cfg.preset:
        preset = get_preset(cfg.preset)
        lines += [f"### Preset `{preset.name}`", "", f"Reproduces {preset.paper}.", "",
                  *[f"- {n}" for n in preset.notes], "",
                  "| condition | codec | checkpoint / bitrate choice |", "|---|---|---|",
                  *[f"| {c.label} | {c.spec_text} | {c.why} |" for c in preset.conditions], ""]
        if preset.corpora and sorted(k for k, _ in cfg.corpora) != sorted(preset.corpora):
            lines += [f"Corpora differ from the paper's ({', '.join(preset.corpora)}): "
                      f"{', '.join(k for k, _ in cfg.corpora)}.", ""]
    if result.unavailable:
        lines += ["**Conditions left out** (`--skip-unavailable`; the codec could not be used here):", "",
                  *[f"- {u['condition']} `{u['codec']}`: {u['reason']}" for u in result.unavailable], ""]
    return lines


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
        "per codec as spoof, after re-synthesis through that codec (a test-only codec: test utterances only). "
        "All audio is 16 kHz mono 16-bit FLAC.", "",
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
        *condition_section(cfg, result),
        *quality_section(cfg, result),
        "## Sources", "", "| corpus | licence |", "|---|---|",
        *[f"| {name} | {lic} |" for name, lic in licences.items()], "",
        "## Features", "", "| column | type |", "|---|---|",
        *[f"| {k} | {type(v).__name__}{'(' + ', '.join(v.names) + ')' if hasattr(v, 'names') else ''} |"
          for k, v in dataset_features(cfg.quality).items()], "",
        "`codec` is `none` and `condition` is `real` on bona fide rows. `source_id` names the real utterance "
        "each row derives from. `logmel_distance` and `si_snr_db`"
        + "".join(f", `{OPTIONAL_QUALITY[m]}`" for m in cfg.quality) + " are null on bona fide rows. `clipped` marks "
        f"rows whose source recording is clipped ({result.clipped_sources} sources).", "",
        *BAD_INPUT_SECTION,
        "## Reading without torchcodec", "", "```python",
        "import datasets, io, soundfile as sf",
        "ds = datasets.load_dataset('DIR').cast_column('audio', datasets.Audio(decode=False))",
        "wave, sr = sf.read(io.BytesIO(ds['train'][0]['audio']['bytes']))", "```", "",
    ]
    atomic_write_text(cfg.out / "README.md", "\n".join(yaml + [""] + lines))
