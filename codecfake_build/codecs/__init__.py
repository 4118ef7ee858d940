"""Codec registry.  One file per codec family in this package; see base.Codec."""

from codecfake_build.codecs.base import (  # noqa: F401
    CODECS,
    Codec,
    CodecConfig,
    CodecSpec,
    CodecUnavailableError,
    create_codec,
    parse_codec_list,
)
