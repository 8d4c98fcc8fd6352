"""The fuzzing harness: damaged derivatives of every input kind puppetry reads, run through its CLI.

``python -m tests.fuzz --cases 1000 --seed 0`` (from the repository root, beside ../shared) builds a
corpus of small real inputs from ../shared/data (:mod:`tests.fuzz.corpus`), damages them
(:mod:`tests.fuzz.mutations`) and runs each case in a worker process (:mod:`tests.fuzz.worker`) with a
time limit and a memory ceiling (:mod:`tests.fuzz.harness`). Every case ends as one of: ``ok``, ``clean``
(a one-line ``puppetry: error:`` and exit status 2), ``unexpected`` (a crash, a traceback, an
"unexpected" error or another exit status), ``hang``, ``leftover`` (an output or temporary file left
after a failure) or ``memory`` (peak memory over the ceiling). The suite runs a sample
(tests/test_fuzz.py); the README reports a full run.
"""
