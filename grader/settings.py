"""One place for every number the grader relies on: tolerances, seeds and limits.

Exercise-specific sizes live with the exercise: the default network and the training run in
its YAML file, the probe sizes in grader/judge/probes/<exercise>.py; everything here applies
to every exercise.
"""

# Comparisons of an attempt's float64 output with the reference.
RTOL = 1e-6
ATOL = 1e-9

# A link is judged on its own inputs only when they are of the true scale: what the
# reference computes from the attempt's own upstream values must reach at least this share
# of what it computes from the right ones (largest entries compared); below it, ATOL alone
# would let almost anything pass, so the link earns nothing.
LINK_SCALE_FLOOR = 1e-3

# A loss written with a guard inside the log, -log(p + eps), is the exact loss within what a
# loss needs when eps is one of these (a textbook's choice); it passes, with a note.
LOG_GUARDS = (1e-6, 1e-7, 1e-8, 1e-9, 1e-10, 1e-12, 1e-15)

# Finite differences: central differences with step EPS; the check passes when the
# relative error |num - ana| / max(|num| + |ana|, FD_FLOOR) is at most FD_TOL everywhere.
FD_EPS = 1e-6
FD_TOL = 1e-4
FD_FLOOR = 1e-6
# When forward and the loss passed their checks, the central differences that came back are
# the reference's gradient within this (same measure): else they were not computed from that loss.
FD_TRUTH_TOL = 1e-2
# Probes keep every pre-activation at least this far from a kink (e.g. ReLU at 0).
FD_KINK_MARGIN = 1e-3

# The shift used by the stability check: softmax is shift-invariant, exp(1000) is not finite.
STABILITY_SHIFT = 1000.0
STABILITY_SPREAD = 2000.0  # one logit per row this far above the rest: exp() of it overflows
# Every other row of logits this far above the rows between: a softmax shifted by the global
# maximum (not each row's own) gives the lower rows exp(-800) = 0 everywhere, and 0 / 0.
STABILITY_ROWS_APART = 800.0

# Seed of the grader's probe inputs; fixed so that a grade is reproducible.
PROBE_SEED = 20240601

# `drill start --interview`: the whiteboard's time, in minutes, unless --timed says otherwise.
INTERVIEW_MINUTES = 15.0

# Bounds on the process that runs an attempt (flags of `drill grade` override them).
TIMEOUT_SECONDS = 120.0
MEMORY_MB = 2048
OUTPUT_BYTES = 64_000
FILE_MB = 64

# Within that timeout, the worker bounds each part of the run on its own, as a share of the
# timeout (at least MIN_TASK_SECONDS), so that one function that hangs does not keep the
# others from being judged: loading the file, one call of one function, the finite
# differences. Training gets all that is left, less a reserve (a share, at least
# MIN_RESERVE_SECONDS, at most half) for starting Python and sending the results back.
# With the default timeout: 12 s, 6 s, 18 s, and training until 117.6 s.
LOAD_SHARE = 0.10
CALL_SHARE = 0.05
FD_SHARE = 0.15
RESERVE_SHARE = 0.02
MIN_TASK_SECONDS = 0.5
MIN_RESERVE_SECONDS = 1.0
# A partial attempt's second run (links after a blank one, see judge/rerun.py) gets
# what is left of the timeout; with less than this left (beyond the reserve) it is not started.
MIN_SECOND_RUN_SECONDS = 2.0

# How much of an attempt's own output a report shows.
SHOWN_OUTPUT_LINES = 8

# What a Gradescope assignment is worth unless the teacher says otherwise (--points).
GRADESCOPE_POINTS = 100.0

# The sandbox's level "uid" (grader/run/isolation.py): when the grader runs as root, each
# concurrent worker runs as uid and gid SANDBOX_UID_BASE + slot, slot < SANDBOX_SLOTS. No
# user of the machine may have one of these ids (none needs an entry in /etc/passwd).
SANDBOX_UID_BASE = 61000
SANDBOX_SLOTS = 64
SANDBOX_PROCESSES = 256  # RLIMIT_NPROC of a slot's uid: how many processes an attempt may have at once
