"""Corpus readers (lhotse-recipe style): one file per corpus layout."""

from codecfake_build.corpora.base import CORPORA, Corpus, CorpusError, Utterance, open_corpus  # noqa: F401
