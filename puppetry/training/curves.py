"""Loss curves of a training run: ``RUN/metrics.jsonl`` read back and drawn (matplotlib, no display)."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np


def read_metrics(run_dir: Path) -> list[dict]:
    """The rows the trainer logged to ``RUN/metrics.jsonl`` (none when it does not exist)."""
    path = run_dir / "metrics.jsonl"
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def loss_curves_png(rows: list[dict]) -> bytes:
    """One panel per stage with every logged scalar against the step (log scale where positive)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    stages = sorted({r["stage"] for r in rows})
    fig, axes = plt.subplots(1, max(len(stages), 1), figsize=(6 * max(len(stages), 1), 3.6), squeeze=False)
    for ax, stage in zip(axes[0], stages):
        stage_rows = [r for r in rows if r["stage"] == stage]
        keys = [k for k in stage_rows[0] if k not in ("stage", "step", "global_step")]
        steps = [r["step"] for r in stage_rows]
        for key in keys:
            values = np.array([r.get(key, np.nan) for r in stage_rows], dtype=float)
            ax.plot(steps, np.abs(values) if key.startswith("log") else values, label=key)
        ax.set_yscale("symlog", linthresh=1e-3)
        ax.set_title(stage)
        ax.set_xlabel("step")
        ax.legend(fontsize=7)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90)
    plt.close(fig)
    return buf.getvalue()


def write_run_images(run_dir: Path, samples: dict[str, np.ndarray]) -> None:
    """``RUN/samples_NAME.png`` for each ``H x W x 3`` uint8 RGB strip, and ``RUN/loss_curves.png`` when the
    run logged anything: what a recipe's export leaves beside its weights."""
    import cv2

    run_dir = Path(run_dir)
    for name, strip in samples.items():
        cv2.imwrite(str(run_dir / f"samples_{name}.png"), cv2.cvtColor(strip, cv2.COLOR_RGB2BGR))
    rows = read_metrics(run_dir)
    if rows:
        (run_dir / "loss_curves.png").write_bytes(loss_curves_png(rows))
