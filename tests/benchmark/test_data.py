"""benchmark.data: built datasets, protocol folders, file lists, cutting and batching."""

from __future__ import annotations

import shutil
from pathlib import Path

import datasets
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import soundfile as sf
import torch

from benchmark.data import (
    TARGET_BONAFIDE,
    TARGET_SPOOF,
    BuiltDataset,
    DataError,
    FileList,
    LengthBucketSampler,
    ProtocolFolder,
    WaveformDataset,
    class_counts,
    class_weight_tensor,
    class_weights_by_name,
    collate,
    eval_cut,
    find_split_files,
    label_to_target,
    labels_to_targets,
    make_loader,
    random_crop,
    scores_from_logits,
    split_scores,
)
from codecfake_build.audio import encode_flac, tile_to_length
from codecfake_build.schema import BONAFIDE, FEATURES, SPOOF, row_id

SR = 16000
SPOOF_CODECS = [("codecA", "6kbps"), ("codecB", "q3")]


def synth_wave(label: int, n: int, rng: np.random.Generator) -> np.ndarray:
    """Bona fide = a tone, spoof = noise: separable enough for a tiny model to learn."""
    if label == BONAFIDE:
        f = rng.uniform(150, 400)
        x = 0.5 * np.sin(2 * np.pi * f * np.arange(n) / SR) + 0.01 * rng.standard_normal(n)
    else:
        x = 0.3 * rng.standard_normal(n)
    return np.clip(x, -0.99, 0.99).astype(np.float32)


def make_rows(split: str, n: int, seed: int, min_len: int = 800, max_len: int = 6000) -> tuple[dict, list]:
    rng = np.random.default_rng(seed)
    rows: dict[str, list] = {k: [] for k in FEATURES}
    waves = []
    for i in range(n):
        label = BONAFIDE if i % 2 == 0 else SPOOF
        codec, config = ("none", "") if label == BONAFIDE else SPOOF_CODECS[(i // 2) % 2]
        wave = synth_wave(label, int(rng.integers(min_len, max_len)), rng)
        waves.append(wave)
        rows["audio"].append({"bytes": encode_flac(wave, SR), "path": None})
        rows["label"].append(label)
        rows["codec"].append(codec)
        rows["codec_config"].append(config)
        rows["source_id"].append(f"{split}_{i // 2:04d}")
        rows["speaker"].append(f"spk{i % 3}")
        rows["language"].append("en" if (i // 2) % 3 else "zh")
        rows["corpus"].append("synthA" if i < n // 2 else "synthB")
        rows["split"].append(split)
        rows["duration_s"].append(len(wave) / SR)
    return rows, waves


def write_built_dataset(root: Path, sizes: dict[str, int] | None = None, seed: int = 0, **kw) -> Path:
    """A tiny dataset in the HF hub layout the builder writes.

    ``Dataset.from_dict(features=FEATURES)`` would need torchcodec to encode
    Audio, so the Arrow table is built directly and cast to the schema.
    """
    sizes = sizes or {"train": 24, "validation": 12, "test": 8}
    (root / "data").mkdir(parents=True, exist_ok=True)
    for k, (split, n) in enumerate(sizes.items()):
        rows, _ = make_rows(split, n, seed + k, **kw)
        table = pa.table({c: pa.array(v, type=FEATURES[c]()) if c == "audio" else v for c, v in rows.items()})
        datasets.Dataset(table).cast(FEATURES).to_parquet(str(root / "data" / f"{split}-00000-of-00001.parquet"))
    (root / "README.md").write_text("---\nlicense: cc-by-4.0\n---\n# tiny test dataset\n")
    return root


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    return write_built_dataset(tmp_path_factory.mktemp("built"))



# --- built datasets -------------------------------------------------------------------------------


def test_built_dataset_reads_rows_labels_and_audio(built, cache):
    _, waves = make_rows("train", 24, 0)
    ds = BuiltDataset(built, "train", cache_dir=cache)
    assert len(ds) == 24
    assert ds.labels.tolist() == [BONAFIDE, SPOOF] * 12
    wave, label, meta = ds[1]
    assert wave.dtype == np.float32 and label == SPOOF
    np.testing.assert_allclose(wave, waves[1], atol=1.5 / 32768)  # 16-bit FLAC round trip
    assert meta["codec"] == "codecA" and meta["codec_config"] == "6kbps"
    assert meta["filename"] == row_id(meta) == "synthA/train_0000@codecA@6kbps"
    assert ds[0].meta["filename"] == "synthA/train_0000"
    assert ds.filenames == [ds[i].meta["filename"] for i in range(len(ds))]
    assert len(set(ds.filenames)) == len(ds)
    np.testing.assert_allclose(ds.durations(), [len(w) / SR for w in waves], rtol=1e-6)
    assert ds.column("language")[:3] == ["zh", "zh", "en"]


def test_built_dataset_filters(built, cache):
    def rows(**kw):
        return BuiltDataset(built, "train", cache_dir=cache, **kw)

    a = rows(codecs=["none", "codecA"])
    assert set(a.column("codec")) == {"none", "codecA"} and len(a) == 18
    assert set(rows(codecs=["codecB@q3"]).column("codec")) == {"codecB"}
    assert set(rows(codecs="none").labels.tolist()) == {BONAFIDE}  # a bare string is one name
    zh = rows(languages=["zh"])
    assert set(zh.column("language")) == {"zh"} and 0 < len(zh) < 24
    both = rows(corpora=["synthB"], codecs=["none"])
    assert set(both.column("corpus")) == {"synthB"} and set(both.column("codec")) == {"none"}
    # Filtered views address their own rows: item i is the i-th selected row.
    assert both[0].meta["filename"] == both.filenames[0] and both[0].meta["corpus"] == "synthB"
    with pytest.warns(UserWarning, match="codecZ"):
        assert len(rows(codecs=["none", "codecZ"])) == 12
    with pytest.raises(DataError, match="no rows .* match") as err, pytest.warns(UserWarning):
        rows(languages=["fr"])
    assert "\n" not in str(err.value)


def test_built_dataset_errors(built, tmp_path, cache):
    with pytest.raises(DataError, match=r"no split 'dev' \(found: test, train, validation\)"):
        BuiltDataset(built, "dev", cache_dir=cache)
    with pytest.raises(DataError, match="no parquet shards.*Fix:"):
        BuiltDataset(tmp_path, "train", cache_dir=cache)
    (tmp_path / "data").mkdir()
    pq.write_table(FEATURES.arrow_schema.empty_table(), tmp_path / "data" / "validation-00000-of-00001.parquet")
    (tmp_path / "data" / ".validation-00001-of-00002.parquet.tmp.parquet").write_bytes(b"torn")  # writer temp file
    with pytest.raises(DataError, match="split 'validation' has no rows"):
        BuiltDataset(tmp_path, "validation", cache_dir=cache)


# --- label mapping --------------------------------------------------------------------------------


def test_label_mapping_is_inverted_between_dataset_and_model():
    assert (BONAFIDE, SPOOF) == (0, 1)
    assert (TARGET_BONAFIDE, TARGET_SPOOF) == (1, 0)
    assert label_to_target(BONAFIDE) == 1 and label_to_target(SPOOF) == 0 and label_to_target(None) == -1
    assert labels_to_targets(np.array([0, 1, 1])).tolist() == [1, 0, 0]
    with pytest.raises(ValueError):
        label_to_target(2)
    logits = torch.tensor([[0.0, 3.0], [2.0, -1.0]])  # row 0 confident bona fide, row 1 spoof
    assert scores_from_logits(logits).tolist() == [3.0, -3.0]
    bona, spoof = split_scores(np.array([3.0, -3.0]), np.array([1, 0]))
    assert bona.tolist() == [3.0] and spoof.tolist() == [-3.0]


def test_class_counts_and_weights():
    counts = class_counts(np.array([0, 1, 1, 1]))
    assert counts == {"bonafide": 1, "spoof": 3}
    w = class_weight_tensor(counts, [0.9, 0.1])  # [bonafide_w, spoof_w] in config order
    assert w[TARGET_BONAFIDE].item() == pytest.approx(0.9) and w[TARGET_SPOOF].item() == pytest.approx(0.1)
    b = class_weight_tensor(counts, "balanced")
    assert b[TARGET_BONAFIDE].item() == pytest.approx(2.0) and b[TARGET_SPOOF].item() == pytest.approx(4 / 6)
    assert class_weights_by_name(w) == pytest.approx({"bonafide": 0.9, "spoof": 0.1})
    assert class_weight_tensor(counts, None) is None
    with pytest.raises(ValueError, match="no spoof"):
        class_weight_tensor({"bonafide": 3, "spoof": 0}, "balanced")


def test_loader_targets_follow_model_convention(built, cache):
    ds = BuiltDataset(built, "validation", cache_dir=cache)
    batch = next(iter(make_loader(ds, batch_size=4, train=False, num_samples=1000)))
    assert batch.target.tolist() == [label_to_target(int(x)) for x in ds.labels[:4]] == [1, 0, 1, 0]
    assert batch.filenames == ds.filenames[:4]


# --- cutting --------------------------------------------------------------------------------------


def test_eval_cut_is_aasist_tiling():
    x = np.arange(5, dtype=np.float32)
    assert eval_cut(x, 12).tolist() == [0, 1, 2, 3, 4, 0, 1, 2, 3, 4, 0, 1]
    assert eval_cut(np.arange(20.0), 4).tolist() == [0, 1, 2, 3]  # the first N, not a random window
    with pytest.raises(ValueError, match="crop mode"):
        eval_cut(x, 4, crop="center")


def test_random_crop_windows_and_repeat_pads():
    x = np.arange(100, dtype=np.float32)
    crop = random_crop(x, 10, np.random.default_rng(0))
    assert len(crop) == 10 and np.all(np.diff(crop) == 1)  # a contiguous window
    starts = {random_crop(x, 10, np.random.default_rng(s))[0] for s in range(30)}
    assert len(starts) > 5 and max(starts) <= 90
    np.testing.assert_array_equal(random_crop(x[:3], 7, np.random.default_rng(0)), tile_to_length(x[:3], 7))


def test_training_crops_are_seeded_per_epoch_and_index(built, cache):
    src = BuiltDataset(built, "train", cache_dir=cache)

    def crops(seed, epoch):
        ds = WaveformDataset(src, num_samples=700, train=True, seed=seed)
        ds.set_epoch(epoch)
        return [ds[i]["wave"] for i in range(4)]

    a, b, c = crops(1, 1), crops(1, 1), crops(1, 2)
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert not all(np.array_equal(x, y) for x, y in zip(a, c))
    assert all(len(x) == 700 and x.dtype == np.float32 for x in a)
    ev = WaveformDataset(src, num_samples=20000, train=False)
    np.testing.assert_array_equal(ev[0]["wave"], tile_to_length(src[0].wave, 20000))


def test_variable_length_bucketing_and_padding(built, cache):
    src = BuiltDataset(built, "train", cache_dir=cache)
    loader = make_loader(src, batch_size=4, train=False, num_samples=None)
    lengths = np.round(src.durations() * SR).astype(int)
    batches = list(loader)
    assert sum(len(b) for b in batches) == len(src)
    maxes = [int(b.lengths.max()) for b in batches]
    assert maxes == sorted(maxes)  # evaluation walks the clips in length order
    for b in batches:
        assert b.wave.shape == (len(b), int(b.lengths.max()))
        for row, n in enumerate(b.lengths.tolist()):
            assert not b.wave[row, n:].any()  # zero padding after each clip
        assert b.lengths.tolist() == [lengths[src.filenames.index(f)] for f in b.filenames]
    capped = make_loader(src, batch_size=4, train=True, num_samples=None, max_samples=1000)
    assert all(b.wave.shape[1] <= 1000 for b in capped)


def test_collate_pads_with_zeros_and_keeps_lengths():
    items = [{"wave": np.ones(n, np.float32), "target": t, "filename": f, "meta": {}} for n, t, f in ((3, 1, "a"), (5, 0, "b"))]
    b = collate(items)
    assert b.wave.shape == (2, 5) and b.lengths.tolist() == [3, 5] and b.target.tolist() == [1, 0]
    assert b.wave[0].tolist() == [1, 1, 1, 0, 0] and b.filenames == ["a", "b"] and len(b) == 2


def test_bucket_sampler_shuffles_reproducibly():
    lengths = np.arange(100)
    s = LengthBucketSampler(lengths, 8, shuffle=True, generator=torch.Generator().manual_seed(3), pool_batches=2)
    first = list(s)
    assert sorted(i for b in first for i in b) == list(range(100)) and len(first) == len(s) == 13
    again = list(LengthBucketSampler(lengths, 8, shuffle=True, generator=torch.Generator().manual_seed(3),
                                     pool_batches=2))
    assert first == again
    assert len(list(LengthBucketSampler(lengths, 8, shuffle=True, drop_last=True))) == 12


def test_train_loader_order_resumes_from_generator_state(built, cache):
    src = BuiltDataset(built, "train", cache_dir=cache)
    loader = make_loader(src, batch_size=4, train=True, num_samples=500, seed=7)
    assert loader.batch_sampler.drop_last
    _ = [b.filenames for b in loader]  # epoch 1
    state = loader.generator.get_state()
    epoch2 = [b.filenames for b in loader]
    other = make_loader(src, batch_size=4, train=True, num_samples=500, seed=7)
    other.generator.set_state(state)
    assert [b.filenames for b in other] == epoch2


# --- protocol folders and file lists --------------------------------------------------------------


def _write(path: Path, n: int = 1600, sr: int = SR) -> np.ndarray:
    path.parent.mkdir(parents=True, exist_ok=True)
    x = (0.1 * np.random.default_rng(len(path.name)).standard_normal(n)).astype(np.float32)
    sf.write(str(path), x, sr)
    return x


def test_protocol_folder_asvspoof_lines(tmp_path):
    _write(tmp_path / "flac" / "LA_T_1.flac")
    _write(tmp_path / "flac" / "LA_T_2.flac")
    _write(tmp_path / "LA_T_3.wav", sr=8000)  # top-level file in another format and rate
    proto = tmp_path / "protocol.txt"
    proto.write_text(
        "LA_0079 LA_T_1 - - bonafide\n"
        "LA_0080 LA_T_2 - A01 spoof\n"
        "\n"
        "LA_0009 LA_T_3 alaw ita_tx A07 spoof notrim eval\n"  # ASVspoof 2021 style
    )
    pf = ProtocolFolder(tmp_path, proto)
    assert pf.filenames == ["LA_T_1", "LA_T_2", "LA_T_3"]
    assert pf.labels.tolist() == [BONAFIDE, SPOOF, SPOOF]
    assert [e.system for e in pf.entries] == ["-", "A01", "A07"]
    assert pf.entries[0].speaker == "LA_0079"
    wave, label, meta = pf[2]
    assert label == SPOOF and meta["filename"] == "LA_T_3" and wave.dtype == np.float32
    assert len(wave) == 3200  # resampled 8 kHz -> 16 kHz
    assert pf.durations().tolist() == pytest.approx([0.1, 0.1, 0.2])


def test_protocol_folder_keys_tsv_with_header(tmp_path):
    _write(tmp_path / "a.wav")
    _write(tmp_path / "b.flac")
    keys = tmp_path / "keys.tsv"
    keys.write_text("filename\tcm-label\na\tbonafide\nb.flac\tspoof\n")
    pf = ProtocolFolder(tmp_path, keys)
    assert pf.filenames == ["a", "b.flac"] and pf.labels.tolist() == [BONAFIDE, SPOOF]
    assert pf.entries[1].path == tmp_path / "b.flac"


def test_protocol_folder_errors_are_one_line(tmp_path):
    _write(tmp_path / "flac" / "x.flac")
    proto = tmp_path / "p.txt"
    proto.write_text("S x - - bonafide\nS missing_1 - A01 spoof\nS missing_2 - A01 spoof\n")
    with pytest.raises(DataError) as err:
        ProtocolFolder(tmp_path, proto)
    msg = str(err.value)
    assert "\n" not in msg and "missing_1" in msg and "p.txt:2" in msg and "2 of 3" in msg and "Fix:" in msg
    # Only the first content line may be a header; a later line without a key is an error.
    proto.write_text("S x - - bonafide\nS x2 - - maybe\n")
    with pytest.raises(DataError, match=r"p.txt:2: cannot parse .*Fix:"):
        ProtocolFolder(tmp_path, proto)
    proto.write_text("S x - - bonafide\nS x - - spoof\n")
    with pytest.raises(DataError, match="listed twice"):
        ProtocolFolder(tmp_path, proto)
    with pytest.raises(DataError, match="protocol file not found"):
        ProtocolFolder(tmp_path, tmp_path / "nope.txt")
    with pytest.raises(DataError, match="audio folder not found"):
        ProtocolFolder(tmp_path / "nope", proto)



def test_file_list_names_and_errors(tmp_path):
    _write(tmp_path / "in" / "a.wav")
    _write(tmp_path / "in" / "sub" / "b.flac")
    (tmp_path / "in" / "notes.txt").write_text("not audio")
    single = _write(tmp_path / "c.ogg")
    fl = FileList([tmp_path / "in", tmp_path / "c.ogg"])
    assert fl.filenames == ["a", "sub/b", "c"] and fl.labels is None
    wave, label, meta = fl[2]
    assert label is None and meta["filename"] == "c"
    assert len(wave) == len(single)  # ogg is lossy: compare the length only
    batch = next(iter(make_loader(fl, batch_size=3, train=False, num_samples=800)))
    assert batch.target.tolist() == [-1, -1, -1] and batch.filenames == ["a", "sub/b", "c"]
    _write(tmp_path / "in" / "a.flac")
    with pytest.raises(DataError, match="'a' is also used by"):
        FileList(tmp_path / "in")
    with pytest.raises(DataError, match="no such file or folder"):
        FileList(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no audio files found"):
        FileList(tmp_path / "empty")


def test_file_list_on_real_speech(shared):
    """Real corpora mix formats and rates; everything comes out mono 16 kHz float32."""
    fl = FileList([shared / "data" / "speech" / "en" / "librispeech", shared / "data" / "speech" / "en" / "ljspeech"])
    assert len(fl) >= 5 and fl.labels is None
    for i in (0, len(fl) - 1):
        wave, _, meta = fl[i]
        info = sf.info(meta["path"])
        assert wave.dtype == np.float32 and wave.ndim == 1
        assert abs(len(wave) - info.duration * SR) <= 2


@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="ffmpeg not installed")
def test_reads_what_the_real_builder_writes(tmp_path):
    """End to end with codecfake_build: shards, ids and labels agree with the schema."""
    from codecfake_build.build import BuildConfig, build
    from codecfake_build.codecs import parse_codec_list

    rng = np.random.default_rng(0)
    for i in range(8):
        path = tmp_path / "corpus" / f"spk{i % 2}" / f"utt{i}.wav"
        path.parent.mkdir(parents=True, exist_ok=True)
        sf.write(path, synth_wave(BONAFIDE, 4000 + 500 * i, rng), SR)
    out = tmp_path / "out"
    build(BuildConfig(corpora=[("folder", str(tmp_path / "corpus"))], codecs=parse_codec_list("mp3@32kbps"),
                      out=out, language="en", ratios=(0.5, 0.25, 0.25), shard_size=4, progress=False))
    total = 0
    for split in find_split_files(out):
        try:
            ds = BuiltDataset(out, split, cache_dir=tmp_path / "cache")
        except DataError as exc:  # a split the hash-ranked split left empty
            assert "has no rows" in str(exc)
            continue
        total += len(ds)
        assert len(set(ds.filenames)) == len(ds)
        codecs = ds.column("codec")
        assert all((c == "none") == (lab == BONAFIDE) for c, lab in zip(codecs, ds.labels))
        wave, label, meta = ds[len(ds) - 1]
        assert wave.dtype == np.float32 and meta["split"] == split
        assert abs(len(wave) / SR - meta["duration_s"]) < 1e-3
    assert total == 16  # 8 sources, each bona fide + one mp3 copy


# --- training batch sampler: oversampling and DDP sharding -----------------------------------------


def test_oversampling_balances_classes_and_uses_every_minority_item():
    from benchmark.data.loader import TrainBatchSampler

    targets = np.array([1] * 5 + [0] * 23)  # 5 bona fide, 23 spoof
    s = TrainBatchSampler(targets, 4, generator=torch.Generator().manual_seed(0), drop_last=False, oversample=True)
    seen = np.concatenate([b for b in s])
    assert len(seen) == 46 and len(s) == 12
    assert (targets[seen] == 1).sum() == 23 and (targets[seen] == 0).sum() == 23
    counts = np.bincount(seen[targets[seen] == 1], minlength=5)[:5]
    assert counts.min() >= 4 and counts.max() <= 5  # 23 = 4 full passes + 3 drawn once more
    assert sorted(np.flatnonzero(targets == 0)) == sorted(seen[targets[seen] == 0])


@pytest.mark.parametrize("lengths", [None, np.arange(30, dtype=float)])
def test_ddp_shards_are_disjoint_equal_and_cover_the_global_epoch(lengths):
    from benchmark.data.loader import TrainBatchSampler

    targets = np.zeros(30)
    shards = []
    for rank in range(2):
        s = TrainBatchSampler(targets, 4, generator=torch.Generator().manual_seed(5), drop_last=True,
                              lengths=lengths, rank=rank, world_size=2)
        shards.append(list(s))
        assert len(s) == len(shards[-1]) == 3  # 7 full batches -> 6 -> 3 per rank
    a, b = (set(np.concatenate(x).tolist()) for x in shards)
    assert not a & b and len(a | b) == 24
    single = list(TrainBatchSampler(targets, 4, generator=torch.Generator().manual_seed(5), drop_last=True,
                                    lengths=lengths))
    assert [list(x) for x in single[0:6:2]] == [list(x) for x in shards[0]]


def test_middle_eval_cut_takes_the_centre_and_tiles_short_clips():
    from benchmark.data import eval_cut

    x = np.arange(10, dtype=np.float32)
    assert eval_cut(x, 4, "middle").tolist() == [3, 4, 5, 6]
    assert eval_cut(x, 4, "tile").tolist() == [0, 1, 2, 3]
    assert eval_cut(x[:3], 7, "middle").tolist() == [0, 1, 2, 0, 1, 2, 0]
    with pytest.raises(ValueError, match="unknown crop mode 'end'"):
        eval_cut(x, 4, "end")
