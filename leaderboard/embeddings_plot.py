"""2-D map (t-SNE, or UMAP when installed) of a detector's embeddings, as PNG:
``python -m leaderboard embeddings --npz X.npz --out Y.png``.

Reads the ``.npz`` written by ``python -m benchmark embed`` (``benchmark.embeddings``):
``embeddings (N, D)`` plus ``conditions`` and/or ``labels``.  Bona fide points are one
class, each spoof condition (attack / codec) another, each with its own colour.

Big sets stay quick: at most ``max_per_class`` points per class are kept (a seeded
draw), and embeddings wider than 50 dimensions are first reduced to 50 by PCA, the
usual t-SNE preprocessing.  The same npz, options and seed give the same picture.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from leaderboard.plots import _pyplot, _save

BONAFIDE = "bonafide"
METHODS = ("tsne", "umap")


class EmbeddingsError(ValueError):
    """A one-line problem with an embeddings file or the plot options."""


def load_embeddings(path: str | Path) -> dict[str, np.ndarray]:
    path = Path(path)
    if not path.is_file():
        raise EmbeddingsError(f"{path}: no such file. Fix: write it with python -m benchmark embed ... --out {path}")
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
    except (OSError, ValueError) as exc:
        raise EmbeddingsError(f"{path}: not a readable .npz ({type(exc).__name__}). "
                              "Fix: write it with python -m benchmark embed") from None
    emb = arrays.get("embeddings")
    if emb is None:
        raise EmbeddingsError(f"{path}: no 'embeddings' array (has: {', '.join(sorted(arrays)) or 'nothing'}). "
                              "Fix: write it with python -m benchmark embed")
    if emb.ndim != 2 or len(emb) < 2:
        raise EmbeddingsError(f"{path}: 'embeddings' must be (N >= 2, D), got shape {emb.shape}")
    for key in ("conditions", "labels"):
        if key in arrays and len(arrays[key]) != len(emb):
            raise EmbeddingsError(f"{path}: {len(arrays[key])} {key} for {len(emb)} embeddings")
    return arrays


def classes_of(arrays: dict[str, np.ndarray]) -> np.ndarray:
    """Per-point class: ``bonafide`` or the spoof condition (the label where there are no conditions)."""
    n = len(arrays["embeddings"])
    labels = arrays["labels"].astype(str) if "labels" in arrays else None
    if "conditions" in arrays:
        out = arrays["conditions"].astype(str).copy()
        if labels is not None:
            out[labels == BONAFIDE] = BONAFIDE
        return out
    return labels if labels is not None else np.full(n, "all")


def subsample(classes: np.ndarray, max_per_class: int | None, seed: int) -> np.ndarray:
    """Sorted indices keeping at most ``max_per_class`` points of each class (seeded draw)."""
    if not max_per_class:
        return np.arange(len(classes))
    rng = np.random.default_rng(seed)
    keep = []
    for name in sorted(set(classes)):
        idx = np.flatnonzero(classes == name)
        keep.append(idx if len(idx) <= max_per_class else rng.choice(idx, max_per_class, replace=False))
    return np.sort(np.concatenate(keep))


def project(emb: np.ndarray, method: str = "tsne", seed: int = 0, perplexity: float = 30.0) -> np.ndarray:
    """``(N, D)`` -> ``(N, 2)``."""
    if method not in METHODS:
        raise EmbeddingsError(f"unknown method '{method}'. Fix: choose one of {', '.join(METHODS)}")
    x = np.asarray(emb, dtype=np.float64)
    if x.shape[1] > 50 and len(x) > 50:
        from sklearn.decomposition import PCA

        x = PCA(n_components=50, random_state=seed).fit_transform(x)
    if method == "umap":
        try:
            import umap
        except ImportError:
            raise EmbeddingsError("UMAP needs the umap-learn package. Fix: pip install umap-learn, "
                                  "or use --method tsne") from None
        return umap.UMAP(n_components=2, random_state=seed).fit_transform(x)
    from sklearn.manifold import TSNE

    # t-SNE needs perplexity < N; small sets get a proportionally smaller one
    perplexity = float(min(perplexity, max(1.0, (len(x) - 1) / 3)))
    return TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed).fit_transform(x)


def plot_embeddings(npz: str | Path, out_png: str | Path, *, max_per_class: int | None = 500, seed: int = 0,
                    method: str = "tsne", perplexity: float = 30.0, title: str | None = None) -> Path:
    """Write the 2-D map of ``npz`` to ``out_png`` (atomically); returns the PNG path."""
    arrays = load_embeddings(npz)
    classes = classes_of(arrays)
    keep = subsample(classes, max_per_class, seed)
    if len(keep) < 2:
        raise EmbeddingsError(f"{npz}: {len(keep)} point(s) to plot. Fix: embed more items")
    xy = project(arrays["embeddings"][keep], method, seed, perplexity)
    classes = classes[keep]
    plt = _pyplot()
    names = sorted(set(classes), key=lambda c: (c != BONAFIDE, c))  # bona fide first, then attacks
    spoof_names = [c for c in names if c != BONAFIDE]
    cmap = plt.get_cmap("tab10" if len(spoof_names) <= 10 else "tab20")
    fig, ax = plt.subplots(figsize=(6.5, 5))
    for name in names:
        at = classes == name
        if name == BONAFIDE:
            style = dict(color="black", marker="o", s=10, alpha=0.8, zorder=3)
        else:
            i = spoof_names.index(name)
            style = dict(color=cmap(i % cmap.N), marker="os^vD<>"[i // cmap.N % 7], s=8, alpha=0.6)
        shown = "bona fide" if name == BONAFIDE else name
        ax.scatter(xy[at, 0], xy[at, 1], label=f"{shown} ({int(at.sum())})", linewidths=0, **style)
    ax.set_xticks([])
    ax.set_yticks([])
    if title is None:
        model = str(arrays["model"]) if "model" in arrays else Path(npz).stem
        data = str(arrays["data"]) if "data" in arrays else ""
        cap = f", <= {max_per_class} per class" if max_per_class else ""
        title = f"{'t-SNE' if method == 'tsne' else 'UMAP'} of {model} embeddings" + (f": {data}" if data else "") + \
            f"\n{len(keep)} of {len(arrays['embeddings'])} points{cap}, seed {seed}"
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5), markerscale=1.5, frameon=False)
    return _save(fig, Path(out_png))
