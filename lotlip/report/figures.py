"""Paper figures with seaborn: sweeps (Fig. 2 sub-captions, Fig. 4 token limit + FLOPs) and similarity maps.

Every figure is written as PNG and PDF, with the numbers it plots in a CSV beside it.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

from lotlip.config import PaperFigureConfig  # noqa: E402
from lotlip.io import atomic_path  # noqa: E402
from lotlip.report.evals import KIND_METRICS, kind_values  # noqa: E402

PANELS = {"long": "long-text retrieval R@1", "short": "short retrieval R@1", "zeroshot": "zero-shot top-1"}
X_LABELS = {"merged_num": "sub-captions per long text", "n_subcaptions": "long texts per image",
            "context_length": "text token limit", "corner_tokens": "corner tokens",
            "train_samples": "training images", "steps": "training steps"}


def sweep_frame(evals: pd.DataFrame, x_values: dict[str, float]) -> pd.DataFrame:
    """Long-form rows (run, x, seed, panel, value) for every kind present: the mean of its metrics per seed."""
    rows = []
    for run, x in x_values.items():
        for kind in KIND_METRICS:
            values, _ = kind_values(evals, run, kind)
            rows += [{"run": run, "x": x, "seed": s, "panel": PANELS[kind], "value": v} for s, v in values.items()]
    if not rows:
        raise ValueError(f"sweep: no evaluation results for runs {', '.join(x_values)}")
    return pd.DataFrame(rows)


def plot_sweep(spec: PaperFigureConfig, data: pd.DataFrame, gflops: dict[float, float] | None = None):
    """One panel per benchmark kind (mean over seeds, 95% interval when there are several), plus FLOPs."""
    panels = [p for p in PANELS.values() if p in set(data.panel)]
    n = len(panels) + (1 if gflops else 0)
    fig, axes = plt.subplots(1, n, figsize=(3.4 * n, 3.0), squeeze=False)
    for ax, panel in zip(axes[0], panels, strict=False):
        sns.lineplot(data=data[data.panel == panel], x="x", y="value", marker="o", errorbar=("ci", 95), ax=ax)
        ax.set(title=panel, xlabel=X_LABELS[spec.x], ylabel="%")
    if gflops:
        ax = axes[0][-1]
        xs = sorted(gflops)
        sns.lineplot(x=xs, y=[gflops[x] for x in xs], marker="s", color="tab:red", ax=ax)
        ax.set(title="text encoder cost", xlabel=X_LABELS[spec.x], ylabel="GFLOPs per text")
    fig.suptitle(spec.caption, fontsize=9)
    fig.tight_layout()
    return fig


def plot_maps(spec: PaperFigureConfig, maps: dict[str, list[dict]], images: list[np.ndarray]):
    """Rows: runs; columns: the scene image, then each run's similarity map over it."""
    runs = list(maps)
    n_scenes = len(images)
    fig, axes = plt.subplots(n_scenes, 1 + len(runs), figsize=(2.2 * (1 + len(runs)), 2.3 * n_scenes),
                             squeeze=False)
    for i, image in enumerate(images):
        axes[i][0].imshow(image)
        axes[i][0].set_title(_wrap(maps[runs[0]][i]["text"]), fontsize=6)
        for j, run in enumerate(runs, start=1):
            entry = maps[run][i]
            axes[i][j].imshow(image)
            axes[i][j].imshow(entry["map"], cmap="magma", alpha=0.6, interpolation="bilinear",
                              extent=(0, image.shape[1], image.shape[0], 0))
            axes[i][j].set_title(f"{run}: {100 * entry['mentioned_share']:.0f}% on object", fontsize=7)
    for ax in axes.flat:
        ax.set_axis_off()
    fig.suptitle(spec.caption, fontsize=8)
    fig.tight_layout()
    return fig


def _wrap(text: str, width: int = 34) -> str:
    words, lines, line = text.split(), [], ""
    for w in words:
        if len(line) + len(w) + 1 > width:
            lines.append(line)
            line = w
        else:
            line = f"{line} {w}".strip()
    return "\n".join([*lines, line])


def save_figure(fig, data: pd.DataFrame, png_path: str | Path) -> None:
    """PNG, PDF and the plotted numbers (CSV) beside each other, each written atomically."""
    png_path = Path(png_path)
    png_path.parent.mkdir(parents=True, exist_ok=True)
    for suffix in (".png", ".pdf"):
        with atomic_path(png_path.with_suffix(suffix)) as tmp:
            fig.savefig(tmp, format=suffix[1:], dpi=150)
    plt.close(fig)
    with atomic_path(png_path.with_suffix(".csv")) as tmp:
        data.to_csv(tmp, index=False)
