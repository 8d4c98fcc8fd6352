"""Markdown table of a self-reenactment evaluation, per driving video: static vs warp, before vs after.

    puppetry evaluate --self ../shared/data/driving/*.mp4 --no-identity --max-size 512 -o evaluation/after
    python benchmarks/self_table.py evaluation/after/metrics.json [--before evaluation/before/metrics.json]

Columns: PSNR (dB), SSIM, L1, AKD (px), lip and eye correlation; with ``--before`` each warp cell shows
``before -> after``. The static baseline is the source repeated (the same before and after).
"""

from __future__ import annotations

import argparse
import json

COLUMNS = (("psnr", "PSNR", "{:.2f}"), ("ssim", "SSIM", "{:.3f}"), ("l1", "L1", "{:.4f}"),
           ("akd", "AKD", "{:.2f}"), ("lip_corr", "Lip corr", "{:.2f}"), ("eye_corr", "Eye corr", "{:.2f}"))


def _pairs(path: str, engine: str) -> dict[str, dict]:
    data = json.load(open(path))["results"]["self"][engine]["pairs"]
    return {p["name"]: p["mean"] for p in data}


def _cell(mean: dict | None, key: str, fmt: str) -> str:
    value = None if mean is None else (mean.get(key) or {}).get("value")
    return "-" if value is None else fmt.format(value)


def _summary(path: str, engine: str) -> dict:
    return json.load(open(path))["results"]["self"][engine]["mean"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("after")
    parser.add_argument("--before")
    args = parser.parse_args()
    static, after = _pairs(args.after, "static"), _pairs(args.after, "warp")
    before = _pairs(args.before, "warp") if args.before else {}
    head = ["video"] + [f"static {c[1]}" for c in COLUMNS if c[0] not in ("lip_corr", "eye_corr")] + \
        [f"warp {c[1]}" for c in COLUMNS]
    print("| " + " | ".join(head) + " |")
    print("|" + " --- |" * len(head))
    rows = [(name, static.get(name), before.get(name), after[name]) for name in sorted(after, key=lambda n: int(n[1:-4]))]
    rows.append(("mean", _summary(args.after, "static"), _summary(args.before, "warp") if args.before else None,
                 _summary(args.after, "warp")))
    for name, s, b, a in rows:
        cells = [name] + [_cell(s, k, f) for k, _, f in COLUMNS if k not in ("lip_corr", "eye_corr")]
        for key, _, fmt in COLUMNS:
            cells.append(f"{_cell(b, key, fmt)} -> {_cell(a, key, fmt)}" if args.before else _cell(a, key, fmt))
        print("| " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
