"""``python -m tests.fuzz``: a seeded fuzzing run over every input kind; prints the counts, writes a JSON
report and exits 1 when any case was unexpected, hung, left files behind or went over the memory ceiling."""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

from tests.fuzz.corpus import build_corpus
from tests.fuzz.harness import OUTCOMES, run_cases, summary

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"


def main() -> int:
    p = argparse.ArgumentParser(prog="python -m tests.fuzz", description=__doc__)
    p.add_argument("--cases", type=int, default=1000, help="number of cases (default 1000)")
    p.add_argument("--first", type=int, default=0, help="first case number (rerun a slice of a run)")
    p.add_argument("--seed", type=int, default=0, help="run seed: the same seed gives the same cases")
    p.add_argument("--workers", type=int, default=2, help="worker processes (default 2)")
    p.add_argument("--timeout", type=float, default=60.0, help="seconds a case may take (default 60)")
    p.add_argument("--memory-mb", type=float, default=2048.0, help="peak memory ceiling per case (default 2048)")
    p.add_argument("--kinds", nargs="*", help="only these input kinds")
    p.add_argument("--with-liveportrait", action="store_true",
                   help="also LivePortrait's release checkpoints (the conformance kit writes 500 MB; slow cases)")
    p.add_argument("--corpus", type=Path, help="folder of the clean inputs (default: a cache in the temp folder)")
    p.add_argument("-o", "--output", type=Path, default=Path("fuzz_report.json"), help="JSON report")
    p.add_argument("-v", "--verbose", action="store_true", help="one line per case")
    args = p.parse_args()
    corpus = args.corpus or Path(tempfile.gettempdir()) / "puppetry-fuzz-corpus"
    kinds = build_corpus(corpus, DATA, args.with_liveportrait)
    if args.kinds:
        kinds = {k: v for k, v in kinds.items() if k in args.kinds}
    with tempfile.TemporaryDirectory(prefix="puppetry-fuzz-") as work:
        results = run_cases(kinds, Path(work), args.cases, args.seed, args.workers, args.timeout, args.memory_mb,
                            args.first, args.verbose)
    report = summary(results)
    args.output.write_text(json.dumps(report, indent=2))
    print(f"{'kind':18s} " + " ".join(f"{o:>10s}" for o in OUTCOMES) + "   peak MB")
    for kind, counts in report["kinds"].items():
        print(f"{kind:18s} " + " ".join(f"{counts[o]:10d}" for o in OUTCOMES) + f"   {counts['peak_mb']:7d}")
    print(f"{'all':18s} " + " ".join(f"{report['totals'][o]:10d}" for o in OUTCOMES))
    for f in report["findings"]:
        print(f"finding: case {f['number']} {f['kind']} {f['mutation']} ({f['seed']}): {f['outcome']}: {f['line']}")
    return 1 if report["findings"] else 0


if __name__ == "__main__":
    sys.exit(main())
