"""The build: corpora -> splits -> shards of (bona fide + codec copies) -> HF dataset.

The plan (which utterance goes to which shard) is fixed before any audio is
decoded, so shard names and counts are known up front and a resumed build
writes exactly the shards an uninterrupted one would.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shlex
import sys
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from codecfake_build.atomic import atomic_write_json
from codecfake_build.audio import AudioError, encode_flac, load_audio, peak_safe, resample
from codecfake_build.codecs import Codec, CodecSpec, CodecUnavailableError, create_codec
from codecfake_build.corpora import Utterance, open_corpus
from codecfake_build.schema import NO_CODEC, SPLITS, STORE_RATE
from codecfake_build.splits import assign_splits, rank_key
from codecfake_build.writer import Manifest, shard_name, write_shard

log = logging.getLogger("codecfake_build")

REPORT = "build_report.json"


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

    def to_command(self) -> str:
        """The CLI command that reproduces this build (written into the card and report)."""
        args = ["python -m codecfake_build", "--codec", ",".join(str(c) for c in self.codecs)]
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
        for kind in self.export:
            args += ["--export", kind]
        args += ["--out", str(self.out)]
        return " ".join(shlex.quote(a) if i else a for i, a in enumerate(args))


@dataclass(frozen=True)
class PlannedUtterance:
    utt: Utterance
    split: str


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

    def summary(self) -> str:
        src = sum(1 for s in self.skipped if s.get("codec") is None)
        cod = len(self.skipped) - src
        return (f"Built {self.out}: {self.rows} rows ({self.bonafide} bona fide, {self.spoof} spoof) in "
                f"{self.shards} shards; skipped {src} source files and {cod} codec outputs "
                f"(see {self.out / REPORT}) in {self.seconds:.1f}s")


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


def fingerprint(cfg: BuildConfig, utts: list[Utterance]) -> str:
    """Everything that changes the output bytes; device and batch size do not."""
    files = []
    for u in utts:
        try:
            size = u.path.stat().st_size
        except OSError:
            size = -1
        files.append([u.corpus, u.source_id, size])
    payload = {
        "corpora": [[k, str(Path(r).resolve()) if r else None] for k, r in cfg.corpora],
        "codecs": [str(c) for c in cfg.codecs], "language": cfg.language, "limit": cfg.limit,
        "split_by": cfg.split_by, "ratios": list(cfg.ratios), "seed": cfg.seed,
        "shard_size": cfg.shard_size, "files": files,
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def base_row(p: PlannedUtterance, codec: str, config: str, wave: np.ndarray, name: str) -> dict[str, Any]:
    u = p.utt
    return {
        "audio": {"bytes": encode_flac(wave, STORE_RATE), "path": name},
        "label": "bonafide" if codec == NO_CODEC else "spoof",
        "codec": codec, "codec_config": config, "source_id": u.source_id, "speaker": u.speaker,
        "language": u.language, "corpus": u.corpus, "split": p.split,
        "duration_s": float(len(wave) / STORE_RATE),
    }


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


def build_shard(shard: list[PlannedUtterance], codecs: list[Codec], batch_size: int,
                ) -> tuple[list[dict[str, Any]], list[dict[str, str]]]:
    skipped: list[dict[str, str]] = []
    loaded: list[tuple[int, np.ndarray, int]] = []
    for i, p in enumerate(shard):
        try:
            wave, sr = load_audio(p.utt.path)
        except AudioError as err:
            skipped.append(skip_record(p, err.problem))
            log.warning("skipping %s", err)
            continue
        loaded.append((i, wave, sr))
    per_codec: list[tuple[dict[int, np.ndarray], dict[int, str]]] = [run_codec(c, loaded, batch_size) for c in codecs]
    rows = []
    for i, wave, sr in loaded:
        p = shard[i]
        stem = p.utt.source_id.replace("/", "_")
        rows.append(base_row(p, NO_CODEC, "", peak_safe(resample(wave, sr, STORE_RATE)), f"{stem}.flac"))
        for codec, (outs, errs) in zip(codecs, per_codec):
            if i in errs:
                skipped.append(skip_record(p, errs[i], codec.spec))
                log.warning("%s: codec %s failed (%s); row skipped", p.utt.path, codec.spec, errs[i])
                continue
            name = f"{stem}@{codec.registry_name}@{codec.config.name}.flac"
            rows.append(base_row(p, codec.registry_name, codec.config.name, outs[i], name))
    return rows, skipped


def build(cfg: BuildConfig) -> BuildResult:
    t0 = time.time()
    utts, licences = list_utterances(cfg)
    if not utts:
        raise ValueError("the corpora hold no audio files: check the --corpus paths")
    cfg.out.mkdir(parents=True, exist_ok=True)
    manifest = Manifest.open(cfg.out, fingerprint(cfg, utts), overwrite=cfg.overwrite)
    codecs = [create_codec(spec, device=cfg.device, weights=cfg.weights.get(spec.name)) for spec in cfg.codecs]
    for c in codecs:  # fail on missing weights/binaries before any work, not mid-build
        c.ensure_loaded()
    shards = plan(cfg, utts)
    todo = [(s, i, len(lst), sh) for s, lst in shards.items() for i, sh in enumerate(lst)]
    bar = tqdm(total=len(utts), unit="utt", desc="codecfake_build", disable=not cfg.progress,
               file=sys.stderr, dynamic_ncols=True)
    for split, i, total, shard in todo:
        name = shard_name(split, i, total)
        if manifest.is_done(name):
            bar.update(len(shard))
            continue
        rows, skipped = build_shard(shard, codecs, cfg.batch_size)
        # A zero-row parquet file breaks datasets' reader, so a shard whose inputs
        # were all bad is recorded in the manifest but not written.
        sha = write_shard(rows, cfg.out / name) if rows else None
        manifest.record(name, sha, len(rows), skipped)
        bar.update(len(shard))
    bar.close()
    result = summarise(cfg, manifest, shards, time.time() - t0)
    from codecfake_build.card import write_card
    write_card(cfg, result, licences, codecs)
    for kind in cfg.export:
        from codecfake_build.export import EXPORTERS
        EXPORTERS[kind](cfg.out, [str(c) for c in cfg.codecs])
    return result


def summarise(cfg: BuildConfig, manifest: Manifest, shards: dict[str, list], seconds: float) -> BuildResult:
    import pyarrow.parquet as pq

    skipped: list[dict[str, str]] = []
    labels: Counter[int] = Counter()
    split_rows: Counter[str] = Counter()
    names = [shard_name(s, i, len(lst)) for s, lst in shards.items() for i in range(len(lst))]
    for name in names:
        skipped.extend(manifest.shards[name]["skipped"])
        if manifest.shards[name]["rows"] == 0:
            continue
        table = pq.read_table(cfg.out / name, columns=["label", "split"])
        labels.update(table.column("label").to_pylist())
        split_rows.update(table.column("split").to_pylist())
    result = BuildResult(cfg.out, sum(labels.values()), labels[0], labels[1], len(names), skipped,
                         dict(split_rows), seconds)
    atomic_write_json(cfg.out / REPORT, {
        "summary": result.summary(), "rows": result.rows, "bonafide": result.bonafide, "spoof": result.spoof,
        "split_rows": result.split_rows, "shards": names, "skipped": skipped,
        "skipped_counts": dict(Counter(s["reason"] for s in skipped)),
        "codecs": [str(c) for c in cfg.codecs], "seed": cfg.seed, "command": cfg.to_command(),
        "config": {k: v for k, v in asdict(cfg).items() if k not in ("out", "codecs", "corpora")},
    })
    return result
