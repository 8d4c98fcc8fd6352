"""The report ``puppetry train ldnet`` writes at the end: loss curves, Table 1, reconstruction error.

Files: ``RUN/ldnet_report.json`` and ``RUN/ldnet_report.html`` (self-contained, images inline).
"""

from __future__ import annotations

import base64
import html
import json
import logging
import os
from pathlib import Path

import numpy as np

from puppetry.methods.ldnet.inference import LDNet
from puppetry.methods.ldnet.landmarks import LandmarkCorpus
from puppetry.training.curves import loss_curves_png, read_metrics

logger = logging.getLogger(__name__)


def reconstruction_error(net: LDNet, corpus: LandmarkCorpus, limit: int = 5000, seed: int = 0) -> float:
    """Mean point distance of ``G(E_P(l), E_I(l))`` to ``l``, as a fraction of the face box's half side."""
    frames = np.concatenate(corpus.points)
    if len(frames) > limit:
        frames = frames[np.random.default_rng(seed).choice(len(frames), limit, replace=False)]
    out = net.generate(net.pose_code(frames), net.identity_code(frames))
    return float(np.linalg.norm(out - frames, axis=-1).mean())


def write_report(run_dir: Path, weights: Path, heldout: LandmarkCorpus | None, train: LandmarkCorpus) -> dict:
    """Evaluate the exported weights and write the JSON and HTML reports; returns the JSON content."""
    from puppetry.methods.ldnet.evaluation import evaluate_disentanglement

    net = LDNet(weights)
    report: dict = {"weights": str(weights), "train_identities": len(train.identities),
                    "train_frames": train.num_frames,
                    "reconstruction_train": reconstruction_error(net, train)}
    if heldout is not None and len(heldout.identities) >= 2 and net.num_points == 478:
        report["reconstruction_heldout"] = reconstruction_error(net, heldout)
        report["table1"] = evaluate_disentanglement(net, heldout).as_dict()
    else:
        report["table1"] = {"status": "unavailable",
                            "reason": "needs two or more held-out identities and a mediapipe478 model"}
    rows = read_metrics(run_dir)
    _atomic_write(run_dir / "ldnet_report.json", json.dumps(report, indent=2))
    _atomic_write(run_dir / "ldnet_report.html", _html(report, rows))
    logger.info("wrote %s", run_dir / "ldnet_report.html")
    return report


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def _html(report: dict, rows: list[dict]) -> str:
    t1 = report["table1"]
    parts = ["<!doctype html><meta charset='utf-8'><title>LD-Net report</title>",
             "<style>body{font-family:sans-serif;max-width:1100px;margin:2em auto}"
             "td,th{border:1px solid #ccc;padding:4px 10px}table{border-collapse:collapse}</style>",
             "<h1>LD-Net training report</h1>",
             f"<p>{report['train_identities']} training identities, {report['train_frames']} frames. "
             f"Self-reconstruction error (mean point distance, fraction of the half box side): training "
             f"{report['reconstruction_train']:.4f}"]
    if "reconstruction_heldout" in report:
        parts.append(f", held-out {report['reconstruction_heldout']:.4f}")
    parts.append(".</p><h2>Disentanglement (paper 002, Table 1)</h2>")
    if "E_I" in t1:
        parts.append("<table><tr><th>Sample by</th><th>In E_I's space ↓</th><th>In E_P's space ↓</th></tr>")
        for key, label in (("same_identity", "Same identity"), ("same_pose", "Same pose/exp"),
                           ("both_different", "Both different")):
            parts.append(f"<tr><td>{label}</td><td>{t1['E_I'][key]:.4f}</td><td>{t1['E_P'][key]:.4f}</td></tr>")
        parts.append(f"</table><p>{t1['pairs_per_pattern']} pairs per pattern on {len(t1['heldout_identities'])} "
                     f"held-out identities ({t1['heldout_frames']} frames): "
                     f"{html.escape(', '.join(t1['heldout_identities']))}. {html.escape(t1['pairs'])}.</p>")
    else:
        parts.append(f"<p>Unavailable: {html.escape(t1['reason'])}.</p>")
    if rows:
        png = base64.b64encode(loss_curves_png(rows)).decode()
        parts.append(f"<h2>Loss curves</h2><img alt='loss curves' src='data:image/png;base64,{png}'>")
    return "\n".join(parts)
