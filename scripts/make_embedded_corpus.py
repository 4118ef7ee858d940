#!/usr/bin/env python3
"""Generate the `embedded` corpus: SYNTHETIC espeak-ng speech, not human speech.

It exists so that `codecfake-build` runs offline on a fresh machine with no
corpus downloaded.  It is stand-in material for smoke tests and demos only;
a detector trained or scored on it says nothing about real bona fide speech.

Usage (from the repository root; needs the `espeak-ng` binary):

    python scripts/make_embedded_corpus.py            # rewrite the committed data
    python scripts/make_embedded_corpus.py --out DIR  # write elsewhere

The output is deterministic for a given espeak-ng / libsndfile / soxr build:
every parameter is pinned below and nothing random is involved.  The
espeak-ng version is written into metadata.tsv so a later regeneration with a
different build can be recognised.

All sentences below were written for this project and are dedicated to the
public domain (CC0-1.0).
"""

from __future__ import annotations

import argparse
import csv
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from codecfake_build.audio import peak_safe, resample  # noqa: E402

DEFAULT_OUT = REPO / "codecfake_build" / "corpora" / "embedded_data"
SAMPLE_RATE = 16_000
SPEED_WPM = 165  # espeak-ng's default (175) is brisk; slower keeps short sentences above 1.5 s
AMPLITUDE = 100
MIN_S, MAX_S = 1.5, 4.0
# Trailing/leading silence is trimmed to this much: espeak-ng appends ~0.3-0.5 s
# of silence, which would only cost bytes in the committed FLACs.
PAD_S = 0.08
SILENCE_DB = -45.0
PEAK = 0.5

# Either a plain string (espeak-ng reads the normal spelling) or (text as
# normally written, input given to espeak-ng).  The input differs from
# the text where plain Debian espeak-ng 1.51 cannot read the normal spelling:
#  * Mandarin: the `cmn` voice turns hanzi into pinyin but then reads the tone
#    digits as English numbers ("ni three"), so we feed tone-numbered pinyin to
#    the `cmn-latn-pinyin` voice instead.
#  * Japanese: the `ja` voice reads kana only (kanji come out as "Chinese
#    letter" in English), reads the particles は/へ as "ha"/"he", and reads
#    おう/えい literally; so the input is kana with わ for は and ー for long vowels.
SENTENCES: dict[str, list[str | tuple[str, str]]] = {
    "en-us+m3": [
        "The red kite rose above the quiet field.",
        "A cold wind swept the old porch.",
        "She packed two apples and some bread.",
        "The clock struck nine in the evening.",
        "Smooth stones lay along the shallow creek.",
        "The small boat drifted toward the pier.",
    ],
    "en-gb+f3": [
        "The brass key fits the cedar chest.",
        "Our train left the station late.",
        "Thin frost covered the parked cars.",
        "The baker sliced the warm loaf.",
        "Birds gathered on the wire before the storm.",
        "Light from the lamp fell across the book.",
    ],
    "cmn-latn-pinyin+m1": [
        ("我每天早上喝一杯茶。", "wo3 mei3 tian1 zao3 shang4 he1 yi4 bei1 cha2."),
        ("他在图书馆看书。", "ta1 zai4 tu2 shu1 guan3 kan4 shu1."),
        ("这条河的水很清。", "zhe4 tiao2 he2 de5 shui3 hen3 qing1."),
        ("我们明天去公园散步。", "wo3 men5 ming2 tian1 qu4 gong1 yuan2 san4 bu4."),
        ("桌子上有三个苹果。", "zhuo1 zi5 shang4 you3 san1 ge4 ping2 guo3."),
        ("火车八点从北京出发。", "huo3 che1 ba1 dian3 cong2 bei3 jing1 chu1 fa1."),
    ],
    "cmn-latn-pinyin+f2": [
        ("妈妈在厨房做饭。", "ma1 ma5 zai4 chu2 fang2 zuo4 fan4."),
        ("小猫在椅子下面睡觉。", "xiao3 mao1 zai4 yi3 zi5 xia4 mian4 shui4 jiao4."),
        ("春天的花开得很早。", "chun1 tian1 de5 hua1 kai1 de5 hen3 zao3."),
        ("他骑自行车去学校。", "ta1 qi2 zi4 xing2 che1 qu4 xue2 xiao4."),
        ("这本书我已经读完了。", "zhe4 ben3 shu1 wo3 yi3 jing1 du2 wan2 le5."),
        ("我们一起吃晚饭吧。", "wo3 men5 yi4 qi3 chi1 wan3 fan4 ba5."),
    ],
    "ja+m2": [
        ("毎朝コーヒーを飲みます。", "まいあさ コーヒーを のみます。"),
        ("駅まで歩いて行きます。", "えきまで あるいて いきます。"),
        ("図書館で本を読みました。", "としょかんで ほんを よみました。"),
        ("明日は雨が降るそうです。", "あしたわ あめが ふるそーです。"),
        ("猫が窓のそばで寝ています。", "ねこが まどの そばで ねています。"),
        ("この川の水はとても冷たいです。", "この かわの みずわ とても つめたいです。"),
    ],
    "ja+f4": [
        ("公園に桜の花が咲いています。", "こーえんに さくらの はなが さいています。"),
        ("電車は九時に出発します。", "でんしゃわ くじに しゅっぱつします。"),
        ("窓を閉めてください。", "まどを しめて ください。"),
        ("机の上にりんごが三つあります。", "つくえの うえに りんごが みっつ あります。"),
        ("夜になると星がよく見えます。", "よるに なると ほしが よく みえます。"),
        ("新しい靴を買いに行きました。", "あたらしい くつを かいに いきました。"),
    ],
}

FIELDS = ["id", "speaker", "language", "text", "espeak_input", "generator"]


def voice_language(voice: str) -> str:
    base = voice.split("+")[0]
    return {"en-us": "en", "en-gb": "en", "cmn-latn-pinyin": "cmn", "ja": "ja"}[base]


def espeak_version(exe: str) -> str:
    out = subprocess.run([exe, "--version"], capture_output=True, text=True, check=True).stdout
    m = re.search(r"text-to-speech:\s*(\S+)", out)
    return f"espeak-ng {m.group(1) if m else out.strip()}"


def trim_silence(x: np.ndarray, sr: int) -> np.ndarray:
    thresh = 10 ** (SILENCE_DB / 20) * max(float(np.max(np.abs(x))), 1e-9)
    loud = np.flatnonzero(np.abs(x) > thresh)
    if loud.size == 0:
        raise RuntimeError("espeak-ng produced silence")
    pad = int(PAD_S * sr)
    return x[max(loud[0] - pad, 0): loud[-1] + pad + 1]


def synthesise(exe: str, voice: str, text: str, tmp: Path) -> np.ndarray:
    wav = tmp / "out.wav"
    subprocess.run(
        [exe, "-v", voice, "-s", str(SPEED_WPM), "-a", str(AMPLITUDE), "-w", str(wav), "--", text],
        check=True, capture_output=True,
    )
    x, sr = sf.read(str(wav), dtype="float32", always_2d=False)
    if x.ndim > 1:
        x = x.mean(axis=1)
    x = trim_silence(x, sr)
    x = resample(x, sr, SAMPLE_RATE)
    # A fixed peak keeps the six voices at comparable loudness; 0.5 is a typical
    # recorded-speech level and, unlike full scale, keeps the FLACs ~10% smaller.
    return peak_safe(PEAK * x / max(float(np.max(np.abs(x))), 1e-9))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    ap.add_argument("--espeak", default="espeak-ng", help="espeak-ng executable")
    args = ap.parse_args(argv)

    exe = shutil.which(args.espeak)
    if exe is None:
        print(f"error: '{args.espeak}' not found. Fix: apt-get install espeak-ng", file=sys.stderr)
        return 2
    generator = espeak_version(exe)
    out: Path = args.out
    rows = []
    problems = []
    total_bytes = 0
    with tempfile.TemporaryDirectory() as td:
        for voice, sentences in SENTENCES.items():
            lang = voice_language(voice)
            vdir = out / lang / voice
            # Remove stale files so a shorter sentence list leaves no orphans.
            if vdir.exists():
                shutil.rmtree(vdir)
            vdir.mkdir(parents=True)
            for i, entry in enumerate(sentences, start=1):
                text, spoken = (entry, entry) if isinstance(entry, str) else entry
                uid = f"{lang}/{voice}/{i:04d}"
                x = synthesise(exe, voice, spoken, Path(td))
                dur = len(x) / SAMPLE_RATE
                if not MIN_S <= dur <= MAX_S:
                    problems.append(f"{uid}: {dur:.2f} s is outside {MIN_S}-{MAX_S} s ({text})")
                path = out / f"{uid}.flac"
                sf.write(str(path), x, SAMPLE_RATE, format="FLAC", subtype="PCM_16", compression_level=1.0)
                total_bytes += path.stat().st_size
                rows.append({"id": uid, "speaker": voice, "language": lang, "text": text,
                             "espeak_input": spoken, "generator": generator})
                print(f"{uid}\t{dur:.2f} s\t{text}")

    rows.sort(key=lambda r: r["id"])
    with open(out / "metadata.tsv", "w", encoding="utf-8", newline="") as f:
        w = csv.DictWriter(f, fieldnames=FIELDS, delimiter="\t", lineterminator="\n",
                           quoting=csv.QUOTE_NONE, escapechar="\\")
        w.writeheader()
        w.writerows(rows)
    print(f"{len(rows)} utterances, {total_bytes / 1e6:.2f} MB of FLAC, {generator}")
    if problems:
        print("duration problems:\n  " + "\n  ".join(problems), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
