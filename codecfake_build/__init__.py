"""Build Codecfake-style datasets: real speech re-synthesised through codecs."""

__version__ = "0.1.0"
