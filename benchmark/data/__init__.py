"""Datasets for training and scoring detectors: built Codecfake-style datasets,
ASVspoof-style protocol folders and plain file lists, plus the loaders that
cut and batch them for a model."""

from benchmark.data.built import BuiltDataset, find_split_files
from benchmark.data.folder import AUDIO_EXTENSIONS, FileList, ProtocolFolder, parse_protocol
from benchmark.data.labels import (
    NO_TARGET,
    TARGET_BONAFIDE,
    TARGET_SPOOF,
    class_counts,
    class_weight_tensor,
    class_weights_by_name,
    key_to_label,
    label_to_target,
    labels_to_targets,
    scores_from_logits,
    split_scores,
)
from benchmark.data.loader import (
    Batch,
    ItemTransform,
    LengthBucketSampler,
    WaveformDataset,
    collate,
    eval_cut,
    make_loader,
    random_crop,
    system_names,
)
from benchmark.data.source import AudioSource, DataError, Item

__all__ = [
    "AUDIO_EXTENSIONS", "AudioSource", "Batch", "BuiltDataset", "DataError", "FileList", "Item", "ItemTransform",
    "LengthBucketSampler", "NO_TARGET", "ProtocolFolder", "TARGET_BONAFIDE", "TARGET_SPOOF", "WaveformDataset",
    "class_counts", "class_weight_tensor", "class_weights_by_name", "collate", "eval_cut", "find_split_files", "key_to_label",
    "label_to_target", "labels_to_targets", "make_loader", "parse_protocol", "random_crop", "scores_from_logits",
    "split_scores", "system_names",
]
