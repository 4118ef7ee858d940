"""``python -m benchmark run demo``: the whole slice on the embedded corpus.

build (embedded synthetic speech x two codecs) -> train Mel-LCNN briefly ->
score the test split (overall and per codec) -> optionally score the official
pretrained AASIST -> run JSONs -> leaderboard.  Offline, CPU, a few minutes.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from benchmark.data import BuiltDataset
from benchmark.models import create_model, load_weights
from benchmark.runs import evaluate_model, write_run
from benchmark.training import (DataConfig, EarlyStoppingConfig, ModelConfig, OptimConfig, TrainConfig, TrainingError,
                                resolve_device, train)
from codecfake_build.build import BuildConfig, build
from codecfake_build.codecs import CodecUnavailableError, create_codec, parse_codec_list
from codecfake_build.writer import OutputConflictError

PROTOCOL = "demo"
OFFLINE_CODECS = "mp3@32kbps,opus@16kbps"
LYRA_CODECS = "soundstream-lyra@9.2kbps,mp3@32kbps"


@dataclass
class DemoConfig:
    out: Path = Path("runs/demo")
    codecs: str | None = None  # None: Lyra + MP3 when Lyra's weights are at hand, else MP3 + Opus
    weights: dict[str, str] = field(default_factory=dict)
    aasist_weights: Path | None = None
    epochs: int = 4
    seed: int = 0
    device: str = "auto"
    progress: bool = True


def pick_codecs(cfg: DemoConfig) -> str:
    if cfg.codecs:
        return cfg.codecs
    try:
        create_codec("soundstream-lyra", weights=cfg.weights.get("soundstream-lyra")).ensure_loaded()
        return LYRA_CODECS
    except CodecUnavailableError:
        return OFFLINE_CODECS


def say(msg: str) -> None:
    print(f"[demo] {msg}", flush=True)


def run_demo(cfg: DemoConfig) -> Path:
    t0 = time.time()
    codecs = pick_codecs(cfg)
    if codecs == OFFLINE_CODECS:
        say("Lyra weights not found (pass --weights soundstream-lyra=DIR to use it); using ffmpeg codecs")
    say(f"1/4 building the dataset from the embedded corpus (synthetic espeak-ng speech) with {codecs}")
    ds_dir = cfg.out / "dataset"
    try:
        built = build(BuildConfig(corpora=[("embedded", None)], codecs=parse_codec_list(codecs), out=ds_dir,
                                  ratios=(0.6, 0.2, 0.2), seed=cfg.seed, weights=cfg.weights, progress=cfg.progress))
    except OutputConflictError as err:
        # The builder's fix names --overwrite, which `run demo` does not have.
        problem = str(err).split(" Fix:")[0]
        raise OutputConflictError(
            f"{problem} Fix: rerun with the first run's --codec, --weights and --seed, choose a new --out, "
            f"or delete {cfg.out}") from None
    say(built.summary())

    say(f"2/4 training Mel-LCNN for {cfg.epochs} epoch{'s' if cfg.epochs != 1 else ''}")
    tcfg = TrainConfig(
        data=DataConfig(dataset=str(ds_dir)), model=ModelConfig(name="lcnn"), out_dir=str(cfg.out / "train" / "lcnn"),
        optim=OptimConfig(epochs=cfg.epochs, batch_size=16, lr=1e-3, weight_decay=1e-4, class_weights="balanced",
                          num_workers=0),
        early_stopping=EarlyStoppingConfig(patience=3), seed=cfg.seed, device=cfg.device,  # type: ignore[arg-type]
    )
    try:
        train(tcfg, progress=cfg.progress)
    except TrainingError as err:
        # The trainer speaks of its config keys; here they are flags.
        raise TrainingError(f"{err} (run demo sets optim.epochs from --epochs and device from --device; "
                            f"its out_dir is {tcfg.out_dir})") from None
    device = str(resolve_device(cfg.device))

    say("3/4 evaluating on the test split")
    test = BuiltDataset(ds_dir, "test")
    runs = cfg.out / "runs"
    train_data = f"demo-train({codecs})"
    lcnn = load_weights(create_model("lcnn"), Path(tcfg.out_dir) / "checkpoints" / "best.pt")
    evaluated = [(lcnn, "lcnn", train_data, cfg.seed, {"train": tcfg.to_dict()})]
    if cfg.aasist_weights:
        aasist = load_weights(create_model("aasist"), cfg.aasist_weights)
        evaluated.append((aasist, "aasist", "ASVspoof2019-LA(official)", None,
                          {"checkpoint": str(cfg.aasist_weights)}))
    for model, name, tdata, seed, config in evaluated:
        tag = "pretrained" if seed is None else f"s{seed}"
        ev = evaluate_model(model, test, cfg.out / "eval" / name, device=device, progress=cfg.progress)
        say(f"{name}: EER {ev.metrics['eer']:.2f}% AUC {ev.metrics['auc']:.3f} on {ev.metrics['n_bonafide']} "
            f"bona fide + {ev.metrics['n_spoof']} spoof test trials")
        write_run(runs / f"{name}-demo-test-{tag}.json", model=name, train_data=tdata, test_data="demo-test(all)",
                  protocol=PROTOCOL, seed=seed, metrics=ev.metrics, config=config, evaluation=ev)
        for cond, m in ev.by_condition.items():
            write_run(runs / f"{name}-demo-test-{cond.replace('@', '_')}-{tag}.json", model=name, train_data=tdata,
                      test_data=f"demo-test({cond})", protocol=PROTOCOL, seed=seed, metrics=m, config=config,
                      evaluation=ev, condition=cond)

    say("4/4 writing the leaderboard")
    from leaderboard.build import build as build_leaderboard

    board = build_leaderboard(runs, cfg.out / "leaderboard")
    say(f"done in {time.time() - t0:.0f}s: dataset {ds_dir}, runs {runs}, leaderboard {board.markdown_path}")
    return cfg.out
