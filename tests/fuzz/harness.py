"""Make the cases, run them in worker processes with a time limit, classify and count them."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from tests.fuzz.corpus import Kind, copy_seed
from tests.fuzz.mutations import MUTATIONS

ROOT = Path(__file__).resolve().parents[2]
OUTCOMES = ("ok", "clean", "unexpected", "hang", "leftover", "memory")


@dataclass
class Case:
    """One damaged input: which kind, seed and mutation, where it lies and what runs it."""

    number: int
    kind: str
    seed: str
    mutation: str
    input: str
    output: str
    argv: list[str]


@dataclass
class Result:
    case: Case
    outcome: str
    rc: int | None
    line: str
    seconds: float
    peak_mb: float


def make_case(number: int, kinds: dict[str, Kind], work: Path, seed: int) -> Case:
    """Case ``number`` of the run seeded ``seed`` (the same number and seed give the same bytes)."""
    rng = np.random.default_rng([seed, number])
    names = sorted(kinds)
    kind = kinds[names[number % len(names)]]
    source = kind.seeds[int(rng.integers(0, len(kind.seeds)))]
    mutation = str(rng.choice([*MUTATIONS, "wrong_extension"], p=[0.16] * 6 + [0.04]))
    others = [k for k in names if kinds[k].inside is None and kinds[k].suffix != kind.suffix]
    if mutation == "wrong_extension" and not others:         # only this kind selected (--kinds)
        mutation = "random_behind_magic"
    folder = work / f"case{number:05d}"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    target = copy_seed(source, folder / ("input" + kind.suffix), kind.link)
    victim = target if kind.inside is None else sorted(target.glob(kind.inside))[
        int(rng.integers(0, len(sorted(target.glob(kind.inside)))))]
    if mutation == "wrong_extension":
        other = kinds[others[int(rng.integers(0, len(others)))]]
        data = other.seeds[int(rng.integers(0, len(other.seeds)))].read_bytes()
    else:
        data = MUTATIONS[mutation](victim.read_bytes(), rng)
    victim.unlink()                                     # maybe a hard link to the seed: replace, never write into
    victim.write_bytes(data)
    output = folder / ("out" + (kind.output_suffix or ""))
    return Case(number, kind.name, source.name, mutation, str(target), str(output),
                kind.command(target, output))


class Worker:
    """One ``tests.fuzz.worker`` process."""

    def __init__(self) -> None:
        read, write = os.pipe()
        env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT))
        self.proc = subprocess.Popen([sys.executable, "-m", "tests.fuzz.worker", str(write)], cwd=ROOT, env=env,
                                     stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                     pass_fds=(write,), text=True)
        os.close(write)
        self.answers = os.fdopen(read, "r")

    def run(self, argv: list[str], timeout: float) -> dict | None:
        """The worker's answer, or None when it did not answer within ``timeout`` s or died."""
        self.proc.stdin.write(json.dumps({"argv": argv}) + "\n")
        self.proc.stdin.flush()
        box: list[str] = []
        reader = threading.Thread(target=lambda: box.append(self.answers.readline()), daemon=True)
        reader.start()
        reader.join(timeout)
        if not box or not box[0]:
            return None
        return json.loads(box[0])

    def close(self) -> None:
        self.proc.kill()
        self.proc.wait()
        self.answers.close()


def classify(case: Case, answer: dict | None, timed_out: bool, memory_mb: float) -> tuple[str, str]:
    """The outcome of a case and the line that shows it."""
    if answer is None:
        return ("hang", "no answer within the time limit") if timed_out else ("unexpected", "the worker died")
    lines = [ln for ln in answer["stderr"].splitlines() if ln.strip()]
    errors = [ln for ln in lines if ln.startswith("puppetry: error:")]
    last = errors[-1] if errors else (lines[-1] if lines else "")
    folder = Path(case.output).parent
    temporary = [p.name for p in folder.iterdir() if ".tmp-" in p.name or p.name.endswith(".tmp")]
    if answer["rc"] not in (0, 2) or "Traceback" in answer["stderr"] or "unexpected" in last or "ESCAPED" in last:
        return "unexpected", last
    if answer["rc"] == 2 and len(errors) != 1:
        return "unexpected", f"{len(errors)} error lines: {last}"
    if temporary or (answer["rc"] != 0 and Path(case.output).exists()):
        return "leftover", f"left {temporary or [Path(case.output).name]} after: {last}"
    if answer["peak_mb"] > memory_mb:
        return "memory", f"peak {answer['peak_mb']:.0f} MB: {last}"
    return ("ok", "") if answer["rc"] == 0 else ("clean", last)


def run_cases(kinds: dict[str, Kind], work: Path, count: int, seed: int = 0, workers: int = 2,
              timeout: float = 60.0, memory_mb: float = 2048.0, first: int = 0,
              progress: bool = False) -> list[Result]:
    """Run cases ``first .. first + count - 1`` of the run seeded ``seed``; each case folder is removed after
    it is judged."""
    numbers = list(range(first, first + count))
    results: list[Result] = []
    lock = threading.Lock()

    def loop() -> None:
        worker = Worker()
        try:
            while True:
                with lock:
                    if not numbers:
                        return
                    number = numbers.pop(0)
                case = make_case(number, kinds, work, seed)
                start = time.perf_counter()
                answer = worker.run(case.argv, timeout)
                seconds = time.perf_counter() - start
                timed_out = answer is None and worker.proc.poll() is None
                if answer is None:                      # hung or died: a fresh worker for the next case
                    worker.close()
                    worker = Worker()
                outcome, line = classify(case, answer, timed_out, kinds[case.kind].memory_mb or memory_mb)
                result = Result(case, outcome, None if answer is None else answer["rc"], line, seconds,
                                0.0 if answer is None else answer["peak_mb"])
                with lock:
                    results.append(result)
                    if progress:
                        print(f"{len(results):5d} {case.kind:16s} {case.mutation:20s} {outcome:10s} {line[:90]}",
                              flush=True)
                shutil.rmtree(Path(case.output).parent, ignore_errors=True)
        finally:
            worker.close()

    threads = [threading.Thread(target=loop) for _ in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sorted(results, key=lambda r: r.case.number)


def summary(results: list[Result]) -> dict:
    """Counts per kind and outcome, the peak memory per kind, and every finding (not ok / clean)."""
    by_kind: dict[str, Counter] = defaultdict(Counter)
    peaks: dict[str, float] = defaultdict(float)
    for r in results:
        by_kind[r.case.kind][r.outcome] += 1
        peaks[r.case.kind] = max(peaks[r.case.kind], r.peak_mb)
    findings = [{**asdict(r.case), "outcome": r.outcome, "rc": r.rc, "line": r.line}
                for r in results if r.outcome not in ("ok", "clean")]
    totals = Counter(r.outcome for r in results)
    return {"cases": len(results), "totals": {o: totals.get(o, 0) for o in OUTCOMES},
            "kinds": {k: {o: c.get(o, 0) for o in OUTCOMES} | {"peak_mb": round(peaks[k])}
                      for k, c in sorted(by_kind.items())},
            "findings": findings}
