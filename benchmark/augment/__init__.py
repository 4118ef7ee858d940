"""Training-only waveform transforms (FD-ADD's pseudo-labelled speed / compression / F0)."""

from benchmark.augment.pseudo_labels import (
    COMPRESSIONS,
    EXTRA_KEYS,
    IDENTITY_SPEED_LABEL,
    SPEEDS,
    Compression,
    PseudoLabelConfig,
    PseudoLabelError,
    PseudoLabelTransform,
    compression_label,
    speed_label,
)

__all__ = [
    "COMPRESSIONS", "EXTRA_KEYS", "IDENTITY_SPEED_LABEL", "SPEEDS", "Compression", "PseudoLabelConfig",
    "PseudoLabelError", "PseudoLabelTransform", "compression_label", "speed_label",
]
