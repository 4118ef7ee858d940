"""The build: corpora -> splits -> shards of (bona fide + codec copies) -> HF dataset.

The plan (which utterance goes to which shard) is fixed before any audio is
decoded, so shard names and counts are known up front and a resumed build
writes exactly the shards an uninterrupted one would.

Conditions.  The k-th codec of ``--codec`` is condition ``C<k>`` (``--preset``
names them from its table instead, e.g. Codecfake's C1..C7); bona fide rows are
``real``.  A codec marked test-only (the preset's unseen C7) is applied to
test-split utterances only.  Every codec is looked up and loaded before any audio
is decoded; missing ones stop the build with one error naming all of them,
unless ``skip_unavailable`` (then they are listed in the report and the card).

Bad input, each recorded in build_report.json and never fatal to the build:

* unreadable, empty, NaN/Inf and all-zero (silent) files are skipped with the
  reason (``audio.load_audio``);
* clips shorter than one codec frame are zero-padded to a frame for the codec
  and trimmed back, so every copy is exactly as long as its source;
* clipped sources (``quality.is_clipped``) are kept -- the clipping is part of
  the real recording -- and flagged in the ``clipped`` column and counted in the
  report; audio over full scale (float files) is first scaled to peak 0.99, and
  every stored waveform is peak-limited to 0.99 so FLAC never clips;
* sources longer than ``max_seconds`` (default 600 s, checked from the file
  header before decoding) are skipped with the reason; shorter long clips are
  re-synthesised in overlapping 30 s windows (``Codec.max_chunk_seconds``)
  and cross-faded, so a codec never sees more than a window at once;
* a codec that fails on one clip costs that clip's row only (the batch is
  retried item by item);
* with ``--quality pesq,stoi``, a measure that has no value on a clip (silence,
  too short, PESQ's "No utterances detected") leaves that column null; the
  reason is logged, listed under ``quality_failures`` in build_report.json and
  counted in the summary.

Pipeline.  While a shard's codecs run, the next shard's sources are decoded and
resampled in a background thread (``ShardPrefetch``, one shard ahead; off with
``CODECFAKE_BUILD_PREFETCH=0``), and the quality pool encodes every row's FLAC
and measures each fake (``quality_pool``); shards and the manifest are still
written here, in shard order.  Neither changes a byte of the output.

Optional quality columns.  ``quality`` (``--quality``) adds the ``pesq_wb``
and/or ``stoi`` columns to every row of the build (null on bona fide rows);
without it those columns do not exist.  The setting is part of the
fingerprint, so resuming an ``--out`` with another ``--quality`` is refused
with an error naming both settings.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shlex
import sys
import tempfile
import threading
import time
from collections import Counter
from concurrent.futures import Future
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf
from tqdm import tqdm

from codecfake_build.atomic import atomic_write_json, remove_killed_writes
from codecfake_build.audio import AudioError, encode_flac, load_audio, peak_safe, resample
from codecfake_build.codecs import CODECS, Codec, CodecSpec, CodecUnavailableError, create_codec
from codecfake_build.codecs.precision import AMP_MODES, choose_amp
from codecfake_build.corpora import Utterance, open_corpus
from codecfake_build.presets import Preset, get_preset
from codecfake_build.quality import fake_quality, is_clipped, parse_quality_list, require_measures
from codecfake_build.quality_pool import QualityPool, resolve_workers
from codecfake_build.registry import UnknownNameError
from codecfake_build.schema import (NO_CODEC, OPTIONAL_QUALITY, REAL_CONDITION, SPLITS, STORE_RATE, condition_label,
                                    dataset_features)
from codecfake_build.splits import assign_splits, rank_key
from codecfake_build.writer import MANIFEST, Manifest, OutputConflictError, shard_name, write_shard

log = logging.getLogger("codecfake_build")

REPORT = "build_report.json"
DEFAULT_MAX_SECONDS = 600.0
#: Sources re-synthesised in float32 and under autocast before a build keeps an AMP dtype.
AMP_CALIBRATION_CLIPS = 4
#: Bumped when the rows change shape; part of the fingerprint.
ROW_FORMAT = 2


@dataclass
class BuildConfig:
    corpora: list[tuple[str, str | None]]
    codecs: list[CodecSpec]
    out: Path
    language: str | None = None
    weights: dict[str, str] = field(default_factory=dict)
    device: str = "cpu"
    batch_size: int = 8
    limit: int | None = None
    split_by: str = "utterance"
    ratios: tuple[float, float, float] = (0.8, 0.1, 0.1)
    seed: int = 0
    shard_size: int = 200
    export: list[str] = field(default_factory=list)
    overwrite: bool = False
    progress: bool = True
    #: Condition label per codec (same order); empty = C1..Cn in --codec order.
    conditions: list[str] = field(default_factory=list)
    #: str(spec) of codecs applied to the test split only (unseen in training).
    test_only: list[str] = field(default_factory=list)
    preset: str | None = None
    skip_unavailable: bool = False
    #: Longer sources are skipped (reason in the report); None or 0 = no limit.
    max_seconds: float | None = DEFAULT_MAX_SECONDS
    #: Optional quality measures ("pesq", "stoi"): each adds its column (schema.OPTIONAL_QUALITY).
    quality: list[str] = field(default_factory=list)
    #: Autocast for the torch codecs: off, auto (CUDA: bf16, else fp16, else float32) or an
    #: explicit bf16/fp16; a dtype is used only if calibration clips stay within 1e-3 of float32.
    amp: str = "off"
    #: Worker processes for the quality values (quality_pool); None = min(8, cores - 1) (0 below 3
    #: cores), 0 = in this process.  Speed only: not in the fingerprint, the bytes are the same for every count.
    quality_workers: int | None = None

    def __post_init__(self) -> None:
        self.quality = parse_quality_list(self.quality)  # canonical order: the same build, one fingerprint
        self.export = list(dict.fromkeys(self.export))  # "--export codecfake" twice is one export
        resolve_workers(self.quality_workers)  # a negative count fails here, before any work
        if self.amp not in AMP_MODES:
            raise ValueError(f"--amp {self.amp}: unknown mode. Fix: use one of {', '.join(AMP_MODES)}")

    @classmethod
    def from_preset(cls, name: str, **kw: Any) -> "BuildConfig":
        """The preset's codecs, condition names, test-only codecs, split method and ratios;
        ``kw`` sets everything else (an explicit ``split_by``/``ratios`` overrides the preset).
        A preset codec that is not registered keeps its bare name and is reported unavailable."""
        preset = get_preset(name)
        specs = []
        for cond in preset.conditions:
            config = cond.config
            if config is None and cond.codec in CODECS:
                config = CODECS.get(cond.codec).default_config
            specs.append(CodecSpec(cond.codec, config))
        kw.setdefault("split_by", preset.split_by)
        kw.setdefault("ratios", preset.ratios)
        return cls(codecs=specs, conditions=[c.label for c in preset.conditions],
                   test_only=[str(s) for s, c in zip(specs, preset.conditions) if c.test_only],
                   preset=preset.name, **kw)

    def condition_labels(self) -> list[str]:
        if self.conditions:
            if len(self.conditions) != len(self.codecs):
                raise ValueError(f"{len(self.conditions)} condition names for {len(self.codecs)} codecs")
            return list(self.conditions)
        return [condition_label(k) for k in range(1, len(self.codecs) + 1)]

    def to_command(self) -> str:
        """The CLI command that reproduces this build (written into the card and report)."""
        args = ["python -m codecfake_build"]
        if self.preset:
            args += ["--preset", self.preset]
            if self.skip_unavailable:
                args.append("--skip-unavailable")
        else:
            args += ["--codec", ",".join(str(c) for c in self.codecs)]
        for kind, root in self.corpora:
            args += ["--corpus", f"{kind}={root}" if root else kind]
        if self.language:
            args += ["--language", self.language]
        for name, path in sorted(self.weights.items()):
            args += ["--weights", f"{name}={path}"]
        if self.limit is not None:
            args += ["--limit", str(self.limit)]
        args += ["--split-by", self.split_by, "--ratios", "/".join(f"{r:g}" for r in self.ratios),
                 "--seed", str(self.seed), "--shard-size", str(self.shard_size)]
        if self.max_seconds != DEFAULT_MAX_SECONDS:
            args += ["--max-seconds", f"{self.max_seconds or 0:g}"]
        if self.quality:
            args += ["--quality", ",".join(self.quality)]
        if self.amp != "off":
            args += ["--amp", self.amp]
        for kind in self.export:
            args += ["--export", kind]
        args += ["--out", str(self.out)]
        return " ".join(shlex.quote(a) if i else a for i, a in enumerate(args))


@dataclass(frozen=True)
class PlannedUtterance:
    utt: Utterance
    split: str


@dataclass(frozen=True)
class ActiveCodec:
    """A loaded codec with its condition name and the splits it applies to."""

    codec: Codec
    condition: str
    test_only: bool = False

    def applies_to(self, split: str) -> bool:
        return split == "test" or not self.test_only


@dataclass
class BuildResult:
    out: Path
    rows: int
    bonafide: int
    spoof: int
    shards: int
    skipped: list[dict[str, str]]
    split_rows: dict[str, int]
    seconds: float
    #: Per condition: label, codec spec, test_only, rows per split, mean quality.
    conditions: list[dict[str, Any]] = field(default_factory=list)
    #: Conditions left out by --skip-unavailable: label, codec, reason.
    unavailable: list[dict[str, str]] = field(default_factory=list)
    clipped_sources: int = 0
    #: The --quality measures of the build, and each null value they left: corpus, source_id,
    #: codec, measure, reason.
    quality: list[str] = field(default_factory=list)
    quality_failures: list[dict[str, str]] = field(default_factory=list)

    def quality_failure_counts(self) -> dict[str, int]:
        counts = Counter(f["measure"] for f in self.quality_failures)
        return {m: counts.get(m, 0) for m in self.quality}

    def summary(self) -> str:
        src = sum(1 for s in self.skipped if s.get("codec") is None)
        cod = len(self.skipped) - src
        missing = (f"; conditions left out as unavailable: {', '.join(u['condition'] for u in self.unavailable)}"
                   if self.unavailable else "")
        nulls = ""
        if self.quality:
            counted = ", ".join(f"{OPTIONAL_QUALITY[m]} on {n}" for m, n in self.quality_failure_counts().items())
            nulls = f"; quality null where the measure failed: {counted} of {self.spoof} fakes"
        return (f"Built {self.out}: {self.rows} rows ({self.bonafide} bona fide, {self.spoof} spoof) in "
                f"{self.shards} shards; skipped {src} source files and {cod} codec outputs{nulls} "
                f"(see {self.out / REPORT}) in {self.seconds:.1f}s{missing}")


def list_utterances(cfg: BuildConfig) -> tuple[list[Utterance], dict[str, str]]:
    utts: list[Utterance] = []
    licences: dict[str, str] = {}
    for kind, root in cfg.corpora:
        corpus = open_corpus(kind, root, language=cfg.language)
        items = corpus.utterances()
        if cfg.limit is not None:
            # Hash-rank rather than take the first N, so a small --limit still spans speakers.
            keep = set(sorted((u.source_id for u in items), key=lambda s: rank_key(cfg.seed, s))[: cfg.limit])
            items = [u for u in items if u.source_id in keep]
        licences[corpus.name] = corpus.licence
        utts.extend(items)
    seen: set[tuple[str, str]] = set()
    for u in utts:
        if (u.corpus, u.source_id) in seen:
            raise ValueError(f"utterance {u.corpus}/{u.source_id} is listed twice: pass each corpus only once")
        seen.add((u.corpus, u.source_id))
    return utts, licences


def plan(cfg: BuildConfig, utts: list[Utterance]) -> dict[str, list[list[PlannedUtterance]]]:
    splits = assign_splits([(u.corpus, u.source_id) for u in utts], [u.speaker for u in utts],
                           cfg.split_by, cfg.ratios, cfg.seed)
    by_split: dict[str, list[PlannedUtterance]] = {s: [] for s in SPLITS}
    for u, s in zip(utts, splits):
        by_split[s].append(PlannedUtterance(u, s))
    shards = {}
    for s, items in by_split.items():
        items.sort(key=lambda p: (p.utt.corpus, p.utt.source_id))
        shards[s] = [items[i:i + cfg.shard_size] for i in range(0, len(items), cfg.shard_size)]
    return shards


def open_codecs(cfg: BuildConfig) -> tuple[list[ActiveCodec], list[dict[str, str]]]:
    """Create and load every codec before any audio is decoded.  Unavailable ones
    (unregistered, unknown config, missing package/binary/weights) are collected;
    all of them are named in one error unless ``cfg.skip_unavailable``."""
    preset: Preset | None = get_preset(cfg.preset) if cfg.preset else None
    hints = {c.label: c.get_it for c in preset.conditions} if preset else {}
    active: list[ActiveCodec] = []
    missing: list[dict[str, str]] = []
    for spec, label in zip(cfg.codecs, cfg.condition_labels()):
        try:
            codec = create_codec(spec, device=cfg.device, weights=cfg.weights.get(spec.name))
            codec.ensure_loaded()
        except UnknownNameError:
            reason = f"codec '{spec.name}' is not registered in this install"
        except (CodecUnavailableError, ImportError, ValueError) as err:
            reason = " ".join(str(err).split())
        else:
            active.append(ActiveCodec(codec, label, str(spec) in cfg.test_only))
            continue
        missing.append({"condition": label, "codec": str(spec), "reason": reason,
                        "get_it": hints.get(label, "")})
    if missing and not cfg.skip_unavailable:
        what = f"preset {cfg.preset}" if cfg.preset else "--codec"
        listed = "; ".join(f"{m['condition']} {m['codec']}: {m['reason']}"
                           # The preset's hint only where the codec's own message has no fix.
                           + (f" (get it: {m['get_it']})" if m["get_it"] and "Fix:" not in m["reason"] else "")
                           for m in missing)
        raise CodecUnavailableError(
            f"{what}: {len(missing)} of {len(cfg.codecs)} codecs unavailable: {listed}. Fix: make them "
            "available, or pass --skip-unavailable to build the others (recorded in build_report.json)")
    if not active:
        raise CodecUnavailableError("no codec of the build is available: " +
                                    "; ".join(f"{m['codec']}: {m['reason']}" for m in missing))
    return active, missing


def calibration_clips(utts: list[Utterance], n: int = AMP_CALIBRATION_CLIPS) -> list[np.ndarray]:
    """The first ``n`` readable sources at STORE_RATE, in corpus order (the same clips on a resume)."""
    clips: list[np.ndarray] = []
    for u in utts:
        if len(clips) == n:
            break
        try:
            wave, sr = load_audio(u.path)
        except AudioError:
            continue
        if len(wave) <= DEFAULT_MAX_SECONDS * sr:
            clips.append(resample(wave, sr, STORE_RATE))
    return clips


def choose_codec_amp(cfg: BuildConfig, codecs: list[ActiveCodec], utts: list[Utterance]) -> dict[str, dict]:
    """Run the AMP check (``codecs.precision.choose_amp``) for each torch codec; the decisions,
    by codec spec, go to build_report.json.  An explicit --amp that fails raises AmpCheckError."""
    if cfg.amp == "off":
        return {}
    clips = calibration_clips(utts)
    decisions = {}
    for a in codecs:
        decision = choose_amp(a.codec, clips, STORE_RATE, cfg.amp)
        decisions[a.codec.spec] = decision.to_dict()
        log.info("%s: %s", a.codec.spec, decision.reason)
    return decisions


def amp_in_use(codecs: list[ActiveCodec]) -> dict[str, str]:
    return {a.codec.spec: a.codec.amp for a in codecs if a.codec.amp}


def corpus_files(utts: list[Utterance]) -> list[list]:
    """(corpus, source_id, size) per source: what the fingerprint knows of the input files."""
    files = []
    for u in utts:
        try:
            size = u.path.stat().st_size
        except OSError:
            size = -1
        files.append([u.corpus, u.source_id, size])
    return files


def fingerprint(cfg: BuildConfig, utts: list[Utterance], active: list[ActiveCodec] | None = None,
                files: list[list] | None = None) -> str:
    """Everything that changes the output bytes; device and batch size do not.  ``files``:
    ``corpus_files(utts)`` when the caller has it already (one stat per source, not two)."""
    files = corpus_files(utts) if files is None else files
    # The codecs really used (after --skip-unavailable), with their conditions.
    used = ([(str(s), lab, str(s) in cfg.test_only) for s, lab in zip(cfg.codecs, cfg.condition_labels())]
            if active is None else [(a.codec.spec, a.condition, a.test_only) for a in active])
    payload = {
        "corpora": [[k, str(Path(r).resolve()) if r else None] for k, r in cfg.corpora],
        "codecs": [u[0] for u in used], "language": cfg.language, "limit": cfg.limit,
        "split_by": cfg.split_by, "ratios": list(cfg.ratios), "seed": cfg.seed,
        "shard_size": cfg.shard_size, "files": files, "row_format": ROW_FORMAT,
        "conditions": [[u[1], u[2]] for u in used], "max_seconds": cfg.max_seconds or None,
    }
    if cfg.quality:  # only when set, so builds without it keep the fingerprint they always had
        payload["quality"] = list(cfg.quality)
    amp = amp_in_use(active or [])
    if amp:  # the dtypes change the output bytes; float32 builds keep their old fingerprint
        payload["amp"] = amp
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def named_options(cfg: BuildConfig, files: list[list], active: list[ActiveCodec]) -> dict[str, str]:
    """The fingerprinted settings as a user typed them (``files``: ``corpus_files``), stored in the
    manifest so that a refused resume names the option that differs ("--seed 0 there, 7 now")."""
    digest = hashlib.sha256(json.dumps(files).encode()).hexdigest()[:12]
    amp = amp_in_use(active)
    return {
        "--codec": ",".join(a.codec.spec for a in active),
        "--corpus": " ".join(f"{k}={Path(r).resolve()}" if r else k for k, r in cfg.corpora),
        "--language": cfg.language or "none", "--limit": "none" if cfg.limit is None else str(cfg.limit),
        "--split-by": cfg.split_by, "--ratios": "/".join(f"{r:g}" for r in cfg.ratios), "--seed": str(cfg.seed),
        "--shard-size": str(cfg.shard_size), "--max-seconds": f"{cfg.max_seconds or 0:g}",
        "corpus files": f"{len(files)} files (digest {digest})",
        "--quality": ",".join(cfg.quality) or "none",
        "amp": ",".join(f"{k}={v}" for k, v in amp.items()) or "float32",
    }


def check_out(out: Path) -> None:
    """Refuse an --out that can never work before codecs load (minutes, or a download), without
    creating anything: an existing file, or a folder (or its nearest existing parent) we may not write."""
    if out.exists() and not out.is_dir():
        raise ValueError(f"{out}: --out is an existing file, not a directory. Fix: choose a directory path for --out")
    parent = out
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if parent.is_dir() and not os.access(parent, os.W_OK | os.X_OK):
        raise ValueError(f"{parent}: not writable, so --out {out} cannot be created there. Fix: choose a writable --out")
    if not parent.is_dir():
        raise ValueError(f"{parent}: is a file, so --out {out} cannot be created. Fix: choose another --out")


def prepare_out(out: Path, overwrite: bool) -> None:
    """Create --out and prove it writable; refuse one whose data/ holds parquet files of no build
    of ours (datasets.load_dataset would read them as rows of this one)."""
    check_out(out)
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryFile(dir=out):  # an OSError names the folder (read-only, no permission)
        pass
    foreign = sorted((out / "data").glob("*.parquet"))
    if foreign and not (out / MANIFEST).exists() and not overwrite:
        raise OutputConflictError(
            f"{out}: data/ holds {len(foreign)} parquet files but there is no {MANIFEST}, so they are not a "
            "build this tool can resume. Fix: choose a new --out, or pass --overwrite to replace them")


def remove_stale_files(out: Path, planned: set[str]) -> None:
    """Shards of an earlier build in this --out (--overwrite with other options, a changed plan) and
    temp files of a killed write: datasets.load_dataset reads every data/*.parquet."""
    for path in sorted((out / "data").glob("*.parquet")):
        if f"data/{path.name}" not in planned:
            log.warning("removing %s: not a shard of this build", path)
            path.unlink()
    remove_killed_writes(out / "data")


def remove_unrequested_exports(out: Path, requested: list[str]) -> None:
    """--overwrite replaces the build, so an export of the old one that this run will not rewrite
    (it has no --export of that kind) is removed instead of being left to describe other data."""
    from codecfake_build.export import EXPORT_REMOVERS

    for kind, remove in EXPORT_REMOVERS.items():
        if kind not in requested and remove(out):
            log.warning("removed %s/%s: the export of the build --overwrite replaced", out, kind)


def _finite_or_none(x: float) -> float | None:
    return None if np.isnan(x) else float(x)


def base_row(p: PlannedUtterance, codec: str, config: str, wave: np.ndarray, name: str,
             condition: str = REAL_CONDITION, reference: np.ndarray | None = None,
             clipped: bool = False, optional: dict[str, float | None] | None = None,
             quality: dict[str, float] | None = None, flac: bytes | None = None) -> dict[str, Any]:
    """One dataset row; ``reference`` (the stored bona fide waveform) gives a codec
    row its quality columns, unless ``quality`` brings them already computed (the quality
    pool), as ``flac`` brings ``encode_flac(wave)``; ``optional`` holds the --quality
    columns (writer ignores them unless the build's features name them)."""
    u = p.utt
    if quality is None:
        quality = fake_quality(reference, wave, STORE_RATE) if reference is not None else {}
    return {
        "audio": {"bytes": encode_flac(wave, STORE_RATE) if flac is None else flac, "path": name},
        "label": "bonafide" if codec == NO_CODEC else "spoof",
        "codec": codec, "codec_config": config, "source_id": u.source_id, "speaker": u.speaker,
        "language": u.language, "corpus": u.corpus, "split": p.split,
        "duration_s": float(len(wave) / STORE_RATE),
        "condition": condition,
        "logmel_distance": _finite_or_none(quality.get("logmel_distance", float("nan"))),
        "si_snr_db": _finite_or_none(quality.get("si_snr_db", float("nan"))),
        "clipped": bool(clipped),
        **(optional or {}),
    }


def too_long(path: Path, max_seconds: float | None, n_samples: int | None = None, sr: int | None = None,
             ) -> str | None:
    """The skip reason for a source longer than ``max_seconds``, else None.  Reads only the
    header when called without samples (a many-hour file is never decoded)."""
    if not max_seconds:
        return None
    if n_samples is None:
        try:
            info = sf.info(str(path))
        except Exception:  # unreadable: load_audio reports it with its own reason
            return None
        n_samples, sr = info.frames, info.samplerate
    seconds = n_samples / float(sr or 1)
    if seconds <= max_seconds:
        return None
    return (f"audio is longer than --max-seconds ({seconds:.1f} s > {max_seconds:g} s); "
            "raise --max-seconds (0 = no limit) or split the file")


def skip_record(p: PlannedUtterance, reason: str, codec: str | None = None) -> dict[str, Any]:
    return {"corpus": p.utt.corpus, "source_id": p.utt.source_id, "path": str(p.utt.path),
            "codec": codec, "reason": reason}


def run_codec(codec: Codec, items: list[tuple[int, np.ndarray, int]], batch_size: int,
              ) -> tuple[dict[int, np.ndarray], dict[int, str]]:
    """Re-synthesise (index, wave, sr) items in length-sorted batches of one rate.
    A failing batch is retried item by item so one bad clip costs only itself."""
    outputs: dict[int, np.ndarray] = {}
    errors: dict[int, str] = {}
    by_rate: dict[int, list[tuple[int, np.ndarray]]] = {}
    for idx, wave, sr in items:
        by_rate.setdefault(sr, []).append((idx, wave))
    for sr, group in sorted(by_rate.items()):
        group.sort(key=lambda t: (len(t[1]), t[0]))
        for start in range(0, len(group), batch_size):
            batch = group[start:start + batch_size]
            try:
                outs = codec.resynthesize([w for _, w in batch], sr, STORE_RATE)
                outputs.update({i: o for (i, _), o in zip(batch, outs)})
            except CodecUnavailableError:
                raise
            except Exception as exc:
                for i, w in batch:
                    try:
                        outputs[i] = codec.resynthesize([w], sr, STORE_RATE)[0]
                    except CodecUnavailableError:
                        raise
                    except Exception as one:
                        errors[i] = f"{type(one).__name__}: {str(one).splitlines()[0] if str(one) else ''}"
                log.debug("batch failure in %s: %s", codec.spec, exc)
    return outputs, errors


@dataclass
class LoadedShard:
    """A shard's sources decoded, checked and resampled (``load_shard``), before any codec runs.
    The skip warnings are kept, not logged, so a shard loaded ahead (``ShardPrefetch``) logs
    them when the build reaches it, in the same order as a shard loaded in place."""

    loaded: list[tuple[int, np.ndarray, int]] = field(default_factory=list)  # (row index, wave, rate)
    reals: dict[int, np.ndarray] = field(default_factory=dict)  # the stored bona fide waveforms
    clipped: dict[int, bool] = field(default_factory=dict)
    skipped: list[dict[str, str]] = field(default_factory=list)
    warnings: list[tuple] = field(default_factory=list)  # log.warning arguments

    def log_warnings(self) -> None:
        for args in self.warnings:
            log.warning(*args)


def load_shard(shard: list[PlannedUtterance], max_seconds: float | None = DEFAULT_MAX_SECONDS) -> LoadedShard:
    """Decode every source of a shard (skipping bad and too long files), flag clipping and
    resample the stored copy.  Touches no shared state, so it may run in another thread:
    soundfile and soxr release the GIL while they decode and resample."""
    out = LoadedShard()
    for i, p in enumerate(shard):
        reason = too_long(p.utt.path, max_seconds)
        if reason is None:
            try:
                wave, sr = load_audio(p.utt.path)
            except AudioError as err:
                out.skipped.append(skip_record(p, err.problem))
                out.warnings.append(("skipping %s", err))
                continue
            reason = too_long(p.utt.path, max_seconds, len(wave), sr)  # headers can lie
        if reason is not None:
            out.skipped.append(skip_record(p, reason))
            out.warnings.append(("skipping %s: %s", p.utt.path, reason))
            continue
        out.clipped[i] = is_clipped(wave)
        if out.clipped[i] and float(np.max(np.abs(wave))) > 1.0:
            # Over full scale (float files): scale down once, so codecs that take
            # 16-bit PCM do not add clipping of their own on top.
            wave = peak_safe(wave)
        out.loaded.append((i, wave, sr))
    out.reals = {i: peak_safe(resample(wave, sr, STORE_RATE)) for i, wave, sr in out.loaded}
    return out


#: Set to 0 to load each shard only when the build reaches it (the speed comparison, tests).
PREFETCH_ENV = "CODECFAKE_BUILD_PREFETCH"


class ShardPrefetch:
    """Loads the next shard to build in a background thread while the current one is coded,
    at most one shard ahead (so at most two shards' audio in memory).  The build process still
    writes shards and the manifest itself, one at a time in shard order, so resume and kill -9
    behave as without it."""

    def __init__(self, shards: list[list[PlannedUtterance]], max_seconds: float | None, enabled: bool = True):
        self._shards = shards
        self._max_seconds = max_seconds
        self.enabled = enabled
        self._ahead: tuple[int, Future] | None = None

    @staticmethod
    def enabled_by_env() -> bool:
        return os.environ.get(PREFETCH_ENV, "1").strip() not in ("0", "false", "no", "off")

    def take(self, k: int) -> LoadedShard:
        """Shard ``k`` loaded, and shard ``k + 1`` started in the background."""
        if self._ahead is not None and self._ahead[0] == k:
            loaded = self._ahead[1].result()  # an unexpected error of the loader is raised here
        else:
            loaded = load_shard(self._shards[k], self._max_seconds)
        self._ahead = None
        if self.enabled and k + 1 < len(self._shards):
            self._ahead = (k + 1, self._start(self._shards[k + 1]))
        return loaded

    def _start(self, shard: list[PlannedUtterance]) -> Future:
        future: Future = Future()

        def run() -> None:
            try:
                future.set_result(load_shard(shard, self._max_seconds))
            except BaseException as err:  # handed to the build thread by take()
                future.set_exception(err)

        # A daemon: a build stopped by an exception or Ctrl-C does not wait for a load it will not use.
        threading.Thread(target=run, name="shard-prefetch", daemon=True).start()
        return future


def build_shard(shard: list[PlannedUtterance], codecs: list[ActiveCodec], batch_size: int,
                max_seconds: float | None = DEFAULT_MAX_SECONDS, quality: list[str] | tuple[str, ...] = (),
                pool: QualityPool | None = None, loaded_shard: LoadedShard | None = None,
                ) -> tuple[list[dict[str, Any]], list[dict[str, str]], list[dict[str, str]]]:
    """Rows, skipped inputs, and the optional quality values that failed (row kept, value null).
    ``pool`` measures the fakes and encodes every row's FLAC (the build's, started once); None =
    here, one after another.  ``loaded_shard``: the shard already loaded (prefetched)."""
    pool = pool or QualityPool(0)
    pre = loaded_shard if loaded_shard is not None else load_shard(shard, max_seconds)
    pre.log_warnings()
    skipped: list[dict[str, str]] = list(pre.skipped)
    failures: list[dict[str, str]] = []
    no_values = {OPTIONAL_QUALITY[m]: None for m in quality}
    loaded, reals, clipped = pre.loaded, pre.reals, pre.clipped
    # Each source once (its FLAC and log-mel), before its fakes: the pool works on them while the codecs run.
    sources = {i: pool.submit_source(reals[i], STORE_RATE) for i, _, _ in loaded}
    per_codec = []
    measured: dict[tuple[int, int], Any] = {}  # (codec index, row index) -> Future of FakeWork
    for k, a in enumerate(codecs):
        outs, errs = run_codec(a.codec, [it for it in loaded if a.applies_to(shard[it[0]].split)], batch_size)
        per_codec.append((outs, errs))
        # Submitted as soon as this codec's copies exist: the pool measures them while the next codec runs.
        measured.update({(k, i): pool.submit_fake(sources[i], reals[i], outs[i], quality, STORE_RATE)
                         for i in sorted(outs)})
    rows = []
    for i, wave, sr in loaded:
        p = shard[i]
        stem = p.utt.source_id.replace("/", "_")
        real = reals[i]
        rows.append(base_row(p, NO_CODEC, "", real, f"{stem}.flac", clipped=clipped[i], optional=no_values,
                             flac=sources.pop(i).result().flac))
        for k, (active, (outs, errs)) in enumerate(zip(codecs, per_codec)):
            codec = active.codec
            if i in errs:
                skipped.append(skip_record(p, errs[i], codec.spec))
                log.warning("%s: codec %s failed (%s); row skipped", p.utt.path, codec.spec, errs[i])
                continue
            if i not in outs:  # a test-only codec and a train/validation utterance
                continue
            name = f"{stem}@{codec.registry_name}@{codec.config.name}.flac"
            work = measured.pop((k, i)).result()
            values = work.quality
            for measure, reason in values.failures.items():
                failures.append({"corpus": p.utt.corpus, "source_id": p.utt.source_id, "codec": codec.spec,
                                 "measure": measure, "reason": reason})
                log.warning("%s: %s of codec %s is null: %s", p.utt.path, OPTIONAL_QUALITY[measure], codec.spec,
                            reason)
            rows.append(base_row(p, codec.registry_name, codec.config.name, outs[i], name,
                                 condition=active.condition, reference=real, clipped=clipped[i],
                                 optional=values.optional, quality=values.columns, flac=work.flac))
    return rows, skipped, failures


def build(cfg: BuildConfig) -> BuildResult:
    t0 = time.time()
    utts, licences = list_utterances(cfg)
    if not utts:
        raise ValueError("the corpora hold no audio files: check the --corpus paths")
    # Fail on missing codecs, weights, binaries or quality packages before any work, not mid-build.
    require_measures(cfg.quality)
    check_out(cfg.out)
    codecs, unavailable = open_codecs(cfg)
    amp_decisions = choose_codec_amp(cfg, codecs, utts)
    prepare_out(cfg.out, cfg.overwrite)
    # The options are named in the refusal when a resume would mix settings.
    files = corpus_files(utts)
    manifest = Manifest.open(cfg.out, fingerprint(cfg, utts, codecs, files), overwrite=cfg.overwrite,
                             options=named_options(cfg, files, codecs))
    features = dataset_features(cfg.quality)
    shards = plan(cfg, utts)
    todo = [(s, i, len(lst), sh) for s, lst in shards.items() for i, sh in enumerate(lst)]
    remove_stale_files(cfg.out, {shard_name(*t[:3]) for t in todo})
    if cfg.overwrite:
        remove_unrequested_exports(cfg.out, cfg.export)
    bar = tqdm(total=len(utts), unit="utt", desc="codecfake_build", disable=not cfg.progress,
               file=sys.stderr, dynamic_ncols=True)
    done = {t[:3] for t in todo if manifest.is_done(shard_name(*t[:3]))}  # checksummed once
    bar.update(sum(len(t[3]) for t in todo if t[:3] in done))
    todo = [t for t in todo if t[:3] not in done]
    prefetch = ShardPrefetch([t[3] for t in todo], cfg.max_seconds, ShardPrefetch.enabled_by_env())
    # One pool for the whole build; its workers start with the first fake and stop when the
    # loop ends, also by an exception or Ctrl-C (quality_pool).
    with QualityPool(cfg.quality_workers) as pool:
        for k, (split, i, total, shard) in enumerate(todo):
            name = shard_name(split, i, total)
            rows, skipped, failures = build_shard(shard, codecs, cfg.batch_size, cfg.max_seconds, cfg.quality, pool,
                                                  loaded_shard=prefetch.take(k))
            # A zero-row parquet file breaks datasets' reader, so a shard whose inputs
            # were all bad is recorded in the manifest but not written.
            sha = write_shard(rows, cfg.out / name, features) if rows else None
            # Failures are stored per shard so the report still lists them after a resume.
            manifest.record(name, sha, len(rows), skipped,
                            **({"quality_failures": failures} if cfg.quality else {}))
            bar.update(len(shard))
    bar.close()
    result = summarise(cfg, manifest, shards, time.time() - t0, codecs, unavailable, amp_decisions)
    from codecfake_build.card import write_card
    write_card(cfg, result, licences, [a.codec for a in codecs])
    for kind in cfg.export:
        from codecfake_build.export import EXPORTERS
        EXPORTERS[kind](cfg.out, [a.codec.spec for a in codecs])
    return result


def _mean(values: list[float | None]) -> float | None:
    finite = [v for v in values if v is not None and np.isfinite(v)]
    return float(np.mean(finite)) if finite else None


def summarise(cfg: BuildConfig, manifest: Manifest, shards: dict[str, list], seconds: float,
              codecs: list[ActiveCodec] | None = None, unavailable: list[dict[str, str]] | None = None,
              amp_decisions: dict[str, dict] | None = None) -> BuildResult:
    import pyarrow.parquet as pq

    skipped: list[dict[str, str]] = []
    quality_failures: list[dict[str, str]] = []
    labels: Counter[int] = Counter()
    split_rows: Counter[str] = Counter()
    per_condition: dict[str, dict[str, Any]] = {}
    clipped_sources: set[tuple[str, str]] = set()
    names = [shard_name(s, i, len(lst)) for s, lst in shards.items() for i in range(len(lst))]
    # Summary key -> column; the --quality columns exist only in builds that asked for them.
    means = {"logmel": "logmel_distance", "sisnr": "si_snr_db", **{m: OPTIONAL_QUALITY[m] for m in cfg.quality}}
    columns = ["label", "split", "condition", "corpus", "source_id", "clipped", *means.values()]

    def new_entry() -> dict[str, Any]:
        return {"rows": Counter(), **{k: [] for k in means}}

    for name in names:
        skipped.extend(manifest.shards[name]["skipped"])
        quality_failures.extend(manifest.shards[name].get("quality_failures", []))
        if manifest.shards[name]["rows"] == 0:
            continue
        table = pq.read_table(cfg.out / name, columns=columns).to_pydict()
        labels.update(table["label"])
        split_rows.update(table["split"])
        for i, cond in enumerate(table["condition"]):
            entry = per_condition.setdefault(cond, new_entry())
            entry["rows"][table["split"][i]] += 1
            for key, column in means.items():
                entry[key].append(table[column][i])
            if table["clipped"][i]:
                clipped_sources.add((table["corpus"][i], table["source_id"][i]))
    conditions = []
    real = per_condition.get(REAL_CONDITION)
    conditions.append({"condition": REAL_CONDITION, "codec": NO_CODEC, "test_only": False,
                       "rows": dict(real["rows"]) if real else {}})
    for a in codecs or []:
        entry = per_condition.get(a.condition, new_entry())
        conditions.append({"condition": a.condition, "codec": a.codec.spec, "test_only": a.test_only,
                           "rows": dict(entry["rows"]), "mean_logmel_distance": _mean(entry["logmel"]),
                           "mean_si_snr_db": _mean(entry["sisnr"]), "amp": a.codec.amp,
                           **{f"mean_{OPTIONAL_QUALITY[m]}": _mean(entry[m]) for m in cfg.quality}})
    result = BuildResult(cfg.out, sum(labels.values()), labels[0], labels[1], len(names), skipped,
                         dict(split_rows), seconds, conditions, list(unavailable or []), len(clipped_sources),
                         list(cfg.quality), quality_failures)
    atomic_write_json(cfg.out / REPORT, {
        "summary": result.summary(), "rows": result.rows, "bonafide": result.bonafide, "spoof": result.spoof,
        "split_rows": result.split_rows, "shards": names, "skipped": skipped,
        "skipped_counts": dict(Counter(s["reason"] for s in skipped)),
        "codecs": [a.codec.spec for a in codecs or []], "preset": cfg.preset,
        "conditions": conditions, "unavailable": result.unavailable,
        "clipped_sources": sorted(f"{c}/{s}" for c, s in clipped_sources),
        "quality": list(cfg.quality),
        **({"quality_failures": quality_failures,
            "quality_failure_counts": {
                m: dict(Counter(f["reason"] for f in quality_failures if f["measure"] == m)) for m in cfg.quality}}
           if cfg.quality else {}),
        **({"amp_checks": amp_decisions} if amp_decisions else {}),
        "seed": cfg.seed, "command": cfg.to_command(),
        "config": {k: v for k, v in asdict(cfg).items() if k not in ("out", "codecs", "corpora")},
    })
    return result
