"""Named builds that reproduce a paper's dataset design: ``--preset NAME``.

``codecfake`` -- Xie et al., "The Codecfake Dataset and Countermeasures for the
Universally Detection of Deepfake Audio" (arXiv 2405.04880; data and code:
github.com/xieyuankun/Codecfake).  Seven codec conditions in the paper's order;
C7 (DAC) is unseen in training, so its copies exist only in the test split.
Real VCTK and AISHELL-3 speech, utterance-level splits of about 80/10/10 over all
speakers of both corpora in one build.  Train/validation rows: bona fide plus
C1..C6 copies; test rows: bona fide plus C1..C7 copies of the *same* test
utterances, so every test condition pairs with one and the same real set (as the
release's test/C1..C7 folders: 13,228 real + 13,228 fake files each).

Which checkpoint and bitrate per condition.  The paper names the codec families
only; the released data and code (label files, result lists) do not record
configs either, only the condition names C1..C7 and extra test sets C3-1..C3-4
and C4-1..C4-3 ("different configs" of FunCodec and EnCodec, i.e. C3 and C4 each
used one config).  The paper says its codecs were trained on LibriTTS; where a
LibriTTS checkpoint exists we take it, otherwise (and for the bitrate) the
registry's default config, which is the codec's own main release:

====  ================  ===============  ==========  =============================================
cond  codec             config           bitrate     why this checkpoint / bitrate
====  ================  ===============  ==========  =============================================
C1    soundstream-lyra  9.2kbps          9.2 kbps    Google's own SoundStream release (Lyra v2);
                                                     the paper's LibriTTS-trained SoundStream is
                                                     not public.  9.2 kbps = all 46 RVQ stages,
                                                     Lyra's default and highest quality.
C2    speechtokenizer   nq8              4 kbps      fnlp/SpeechTokenizer speechtokenizer_hubert_avg,
                                                     the only released checkpoint; all 8 RVQ layers
                                                     (16 kHz, 50 Hz x 8 x 10 bit), as an ALM's
                                                     acoustic decoder uses them.
C3    funcodec          en-libritts-     16 kbps     audio_codec-encodec-en-libritts-16k-nq32ds320:
                        ds320-nq32                   the LibriTTS model (as the paper says), all 32
                                                     codebooks at 50 Hz; the registry default.  The
                                                     release's C3-1..C3-4 are *other* FunCodec
                                                     configs, so C3 is one config.
C4    encodec           6kbps            6 kbps      EnCodec 24 kHz at 6 kbps (8 codebooks): the
                                                     registry default and exactly what VALL-E-style
                                                     ALMs decode, the paper's target.
C5    audiodec          24khz            6.4 kbps    symAD_libritts_24000_hop300 + the
                                                     AudioDec_v1_symAD_libritts_24000_hop300_clean
                                                     vocoder: the only official 24 kHz speech pair
                                                     (LibriTTS-trained, as the paper says its
                                                     codecs were); 80 Hz x 8 x 10 bit.
C6    hificodec         16k-320d         2 kbps      AcademiCodec's HiFi-Codec-16k-320d: 16 kHz like
                                                     the dataset, the repo's main speech release
                                                     (50 Hz x 4 codebooks x 10 bit).  Its training
                                                     data include VCTK and AISHELL: sources may be
                                                     utterances it was trained on.
C7    dac               16khz            6 kbps      DAC 16 kHz (12 codebooks x 50 Hz x 10 bit): the
                                                     native rate of the stored audio and the
                                                     registry default; unseen in training.
====  ================  ===============  ==========  =============================================

Every condition names its config explicitly, so a later change of a codec's
default cannot silently alter the preset; the resolved ``name@config`` is also
written into the card, the report and the build fingerprint.  (``Condition``
accepts ``config=None`` = the default at build time, for future presets.)

Availability.  Before any audio is decoded every condition's codec is looked up
and loaded.  If any is unregistered, has no such config, or cannot load (package
or weights missing) the build stops with one error listing them all and how to
get them; ``--skip-unavailable`` builds the rest instead and records the
missing conditions in build_report.json and the card.  Condition names never
shift: a build without C2 still calls DAC "C7".
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Condition:
    """One codec condition of a preset."""

    label: str  # "C1" ... (the export's F0k prefix comes from k)
    codec: str  # registry name
    config: str | None  # None: the codec's default_config at build time
    test_only: bool = False  # unseen in training: copies only in the test split
    why: str = ""  # the reason for this checkpoint/bitrate (card)
    get_it: str = ""  # how to make it available when it is not (error message)

    @property
    def spec_text(self) -> str:
        return self.codec if self.config is None else f"{self.codec}@{self.config}"


@dataclass(frozen=True)
class Preset:
    name: str
    paper: str
    conditions: tuple[Condition, ...]
    corpora: tuple[str, ...] = ()  # corpus kinds the paper used (a different choice is recorded)
    split_by: str = "utterance"
    ratios: tuple[float, float, float] = (0.8, 0.1, 0.1)
    notes: tuple[str, ...] = field(default_factory=tuple)


_WEIGHTS_HINT = "or pass --weights {codec}=PATH (see 'python -m codecfake_build codecs')"

CODECFAKE = Preset(
    name="codecfake",
    paper="Xie et al., The Codecfake Dataset and Countermeasures for the Universally Detection of "
          "Deepfake Audio, arXiv 2405.04880 (github.com/xieyuankun/Codecfake)",
    conditions=(
        Condition("C1", "soundstream-lyra", "9.2kbps",
                  why="Lyra v2, Google's SoundStream release (the paper's LibriTTS SoundStream is not "
                      "public); 9.2 kbps = all 46 RVQ stages, Lyra's default",
                  get_it="pip install ai-edge-litert; weights download from google/lyra on first use, "
                         + _WEIGHTS_HINT.format(codec="soundstream-lyra")),
        Condition("C2", "speechtokenizer", "nq8",
                  why="fnlp/SpeechTokenizer speechtokenizer_hubert_avg (the only release), all 8 RVQ "
                      "layers = 4 kbps at 16 kHz",
                  get_it="pip install --no-deps speechtokenizer==1.0.1 einops; weights from HF "
                         "fnlp/SpeechTokenizer, " + _WEIGHTS_HINT.format(codec="speechtokenizer")),
        Condition("C3", "funcodec", "en-libritts-ds320-nq32",
                  why="audio_codec-encodec-en-libritts-16k-nq32ds320 (LibriTTS-trained, as the paper's codecs), "
                      "all 32 codebooks = 16 kbps, the default (the release's C3-1..C3-4 are other FunCodec "
                      "configs, so C3 is one)",
                  get_it="weights from ModelScope/HF alibaba-damo/audio_codec-*, "
                         + _WEIGHTS_HINT.format(codec="funcodec")),
        Condition("C4", "encodec", "6kbps",
                  why="EnCodec 24 kHz at 6 kbps (8 codebooks): the default and what VALL-E-style ALMs decode",
                  get_it="pip install transformers; weights from HF facebook/encodec_24khz, "
                         + _WEIGHTS_HINT.format(codec="encodec")),
        Condition("C5", "audiodec", "24khz",
                  why="symAD_libritts_24000_hop300 with the AudioDec_v1_symAD_libritts_24000_hop300_clean "
                      "vocoder: the official 24 kHz LibriTTS speech pair, 6.4 kbps",
                  get_it="official facebookresearch/AudioDec checkpoint files, "
                         + _WEIGHTS_HINT.format(codec="audiodec")),
        Condition("C6", "hificodec", "16k-320d",
                  why="AcademiCodec HiFi-Codec-16k-320d: 16 kHz like the dataset, the main speech "
                      "release, 2 kbps (note: its training data include VCTK and AISHELL, so sources may "
                      "be ones it has seen)",
                  get_it="official yangdongchao/AcademiCodec checkpoints, "
                         + _WEIGHTS_HINT.format(codec="hificodec")),
        Condition("C7", "dac", "16khz", test_only=True,
                  why="DAC 16 kHz (6 kbps), the stored audio's rate and the default; unseen in training",
                  get_it="pip install transformers; weights from HF descript/dac_16khz, "
                         + _WEIGHTS_HINT.format(codec="dac")),
    ),
    corpora=("vctk", "aishell3"),
    notes=("Splits at the utterance level over all speakers of both corpora (speakers appear in "
           "several splits, as in the release).",
           "Test pairs: every test condition is scored against the same bona fide test rows."),
)

#: Name -> preset.  Tests substitute cheap codecs by replacing an entry.
PRESETS: dict[str, Preset] = {CODECFAKE.name: CODECFAKE}


def get_preset(name: str) -> Preset:
    if name not in PRESETS:
        raise ValueError(f"unknown preset '{name}'. Choose one of: {', '.join(sorted(PRESETS))}")
    return PRESETS[name]
