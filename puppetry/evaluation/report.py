"""Write an :class:`~puppetry.evaluation.runner.Evaluation`: ``metrics.json`` and a self-contained
``report.html`` (tables of means per engine, per-frame plots and sample frame strips as inline PNGs).

Both files are written to temporary siblings and moved into place only when complete.
"""

from __future__ import annotations

import base64
import html
import io
import json
import logging
import os
import tempfile
from pathlib import Path

import cv2
import numpy as np

from puppetry.errors import MediaError
from puppetry.evaluation.runner import METRICS, STATIC, Evaluation, SampleStrip

logger = logging.getLogger(__name__)

PLOTTED = ("l1", "psnr", "ssim", "lpips", "akd", "apd", "psim", "ed", "gaze", "csim", "aed")
MAX_PLOTTED_PAIRS = 6
LABEL_BAND = 26

_CSS = """
body{font-family:system-ui,sans-serif;margin:2em;max-width:1400px;color:#222}
table{border-collapse:collapse;margin:0.5em 0 1.5em}
th,td{border:1px solid #bbb;padding:4px 8px;text-align:right}
th{background:#eee} td.name{text-align:left;font-weight:600}
td.na{color:#999;font-style:italic} td.best{background:#dff0d8;font-weight:700}
.note{color:#555;font-size:0.9em} img{max-width:100%;border:1px solid #ccc}
"""


def _atomic_write(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _png_base64(rgb: np.ndarray) -> str:
    ok, buf = cv2.imencode(".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    if not ok:
        raise MediaError("could not encode a report image as PNG")
    return base64.b64encode(buf.tobytes()).decode("ascii")


def _labelled(panel: np.ndarray, text: str) -> np.ndarray:
    """``H x W x 3`` panel with a white band and ``text`` above it."""
    band = np.full((LABEL_BAND, panel.shape[1], 3), 255, np.uint8)
    cv2.putText(band, text[: max(4, panel.shape[1] // 9)], (4, LABEL_BAND - 8), cv2.FONT_HERSHEY_SIMPLEX, 0.5,
                (0, 0, 0), 1, cv2.LINE_AA)
    return np.concatenate([band, panel], axis=0)


def strip_image(strip: SampleStrip) -> np.ndarray:
    """One row per sample frame: source | driving | each engine's output (labelled), ``H x W x 3`` uint8."""
    from puppetry.pipeline.frame_sink import side_by_side

    height = strip.source.shape[0]
    rows = []
    for k, index in enumerate(strip.indices):
        names = ["source", f"driving #{index}"] + [n for n in strip.generated if n != STATIC]
        panels = [strip.source, strip.driving[k]] + [strip.generated[n][k] for n in names[2:]]
        panels = [_labelled(cv2.resize(p, (max(2, round(p.shape[1] * height / p.shape[0])), height),
                                       interpolation=cv2.INTER_AREA) if p.shape[0] != height else p, name)
                  for p, name in zip(panels, names)]
        gap = np.full((height + LABEL_BAND, 4, 3), 255, np.uint8)
        row = side_by_side([x for p in panels for x in (p, gap)][:-1], height + LABEL_BAND)
        rows.append(row)
    width = max(r.shape[1] for r in rows)
    rows = [np.pad(r, ((0, 6), (0, width - r.shape[1]), (0, 0)), constant_values=255) for r in rows]
    return np.concatenate(rows, axis=0)


def _format(entry: dict | None) -> tuple[str, str, str]:
    """Cell text, CSS class and tooltip of a metric entry."""
    if entry is None:
        return "", "na", ""
    value = entry.get("value")
    if value is None:
        return entry.get("status", "n/a").replace("_", " "), "na", entry.get("reason", "")
    if isinstance(value, str):
        return value, "", entry.get("note", "")
    return f"{value:.4g}", "", entry.get("note", "") or f"{entry.get('frames', '')} frames"


def _table(setting: str, engines: dict) -> str:
    metrics = [m for m, info in METRICS.items() if setting in info.settings]
    head = "".join(f"<th title='{html.escape(METRICS[m].description)}'>{METRICS[m].label}"
                   f"{' (' + METRICS[m].unit + ')' if METRICS[m].unit else ''} "
                   f"{'&darr;' if METRICS[m].better == 'lower' else '&uarr;'}</th>" for m in metrics)
    best = {}
    for m in metrics:
        vals = {n: e["mean"][m]["value"] for n, e in engines.items()
                if "mean" in e and isinstance(e["mean"].get(m, {}).get("value"), (int, float))}
        if len(vals) > 1:
            pick = min if METRICS[m].better == "lower" else max
            best[m] = pick(vals.values())
    rows = []
    for name, e in engines.items():
        cells = []
        for m in metrics:
            text, cls, tip = _format(e.get("mean", {}).get(m))
            value = e.get("mean", {}).get(m, {}).get("value")
            if m in best and value == best[m]:
                cls = (cls + " best").strip()
            cells.append(f"<td class='{cls}' title='{html.escape(str(tip))}'>{html.escape(text)}</td>")
        label = name + (" (baseline)" if name == STATIC else "")
        rows.append(f"<tr><td class='name'>{html.escape(label)}</td>{''.join(cells)}</tr>")
    return f"<table class='means'><tr><th>engine</th>{head}</tr>{''.join(rows)}</table>"


def _plot(setting: str, engines: dict, pair_index: int) -> str | None:
    """Per-frame metric curves of one pair for every engine, as a base64 PNG (None if nothing to plot)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    series: dict[str, dict[str, list]] = {}
    title = ""
    for name, e in engines.items():
        pairs = e.get("pairs", [])
        if pair_index < len(pairs) and "per_frame" in pairs[pair_index]:
            series[name] = pairs[pair_index]["per_frame"]
            title = pairs[pair_index]["name"]
    metrics = [m for m in PLOTTED if any(m in s for s in series.values())]
    if not metrics:
        return None
    cols = min(4, len(metrics))
    rows = -(-len(metrics) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.6 * cols, 2.6 * rows), squeeze=False)
    offset = 1 if setting == "self" else 0
    for ax, m in zip(axes.flat, metrics):
        for name, s in series.items():
            if m in s:
                y = np.array([np.nan if v is None else (np.inf if v == "inf" else v) for v in s[m]], dtype=float)
                y[~np.isfinite(y)] = np.nan
                ax.plot(np.arange(len(y)) + offset, y, label=name, lw=1.4, ls="--" if name == STATIC else "-")
        info = METRICS[m]
        ax.set_title(f"{info.label} ({'lower' if info.better == 'lower' else 'higher'} is better)", fontsize=9)
        ax.set_xlabel("frame", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(metrics):]:
        ax.axis("off")
    axes.flat[0].legend(fontsize=7)
    fig.suptitle(f"{setting}-reenactment: {title}", fontsize=10)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90)
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def render_html(evaluation: Evaluation) -> str:
    """The whole report page as one HTML string (every image inline)."""
    d = evaluation.data
    parts = [f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>puppetry evaluation</title>"
             f"<style>{_CSS}</style></head><body><h1>puppetry evaluation</h1>",
             f"<p class='note'>{html.escape(d['created'])}, {d['seconds']} s. Max frames per video: "
             f"{d['options']['max_frames']}. Self-reenactment scores frames 1..N-1 of each video against the "
             "video itself (frame 0 is the source); cross-reenactment compares motion with the driving frames "
             "and identity with the source. <b>static</b> repeats the source frame. Best value per column in "
             "green; hover a cell for its frame count or the reason it is missing.</p>"]
    notes = [f"<li>{html.escape(k)}: unavailable &mdash; {html.escape(v['reason'])}</li>"
             for k, v in d["status"].items() if v["status"] != "ok"]
    notes += [f"<li>engine {html.escape(k)}: skipped &mdash; {html.escape(v['reason'])}</li>"
              for k, v in d["engines"].items() if v["status"] != "ok"]
    notes += [f"<li>{html.escape(p['setting'])} pair {html.escape(p['source'])} / {html.escape(p['driving'])} "
              f"skipped &mdash; {html.escape(p['reason'])}</li>" for p in d["skipped_pairs"]]
    if notes:
        parts.append(f"<h2>Unavailable</h2><ul>{''.join(notes)}</ul>")
    for setting, engines in d["results"].items():
        parts.append(f"<h2>{setting.capitalize()}-reenactment: means over all frames</h2>")
        parts.append(_table(setting, engines))
        n_pairs = max(len(e.get("pairs", [])) for e in engines.values())
        for i in range(min(n_pairs, MAX_PLOTTED_PAIRS)):
            png = _plot(setting, engines, i)
            if png:
                parts.append(f"<p><img alt='per-frame metrics' src='data:image/png;base64,{png}'></p>")
    parts.append("<h2>Sample frames</h2>")
    for strip in evaluation.strips:
        parts.append(f"<h3>{html.escape(strip.setting)}: {html.escape(strip.pair)}</h3>"
                     f"<p><img alt='samples' src='data:image/png;base64,{_png_base64(strip_image(strip))}'></p>")
    per_metric = "".join(f"<li><b>{v['label']}</b>: {html.escape(v['description'])}"
                         f"{' (needs weights: ' + v['needs_weights'] + ')' if v['needs_weights'] else ''}</li>"
                         for v in d["metrics"].values())
    parts.append(f"<h2>Metrics</h2><ul>{per_metric}</ul></body></html>")
    return "".join(parts)


def write_report(evaluation: Evaluation, out_dir: str | os.PathLike) -> tuple[Path, Path]:
    """Write ``metrics.json`` and ``report.html`` into ``out_dir`` (created if needed), atomically.

    Returns:
        The paths of the JSON and the HTML file.
    Raises:
        MediaError: ``out_dir`` is a file or cannot be created.
    """
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise MediaError(f"cannot write the report into '{out}': it is a file")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise MediaError(f"cannot create '{out}': {exc.strerror or exc}") from None
    text = json.dumps(evaluation.data, indent=1, allow_nan=False, default=str)
    page = render_html(evaluation)
    json_path, html_path = out / "metrics.json", out / "report.html"
    _atomic_write(json_path, text)
    _atomic_write(html_path, page)
    logger.info("wrote %s and %s", json_path, html_path)
    return json_path, html_path


__all__ = ["write_report", "render_html", "strip_image"]
