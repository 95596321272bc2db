"""One place for every number the grader relies on: tolerances, seeds and limits.

Exercise-specific sizes (the default network, the probe sizes, the training run) live in
the exercise's YAML file; everything here applies to every exercise.
"""

# Comparisons of an attempt's float64 output with the reference.
RTOL = 1e-6
ATOL = 1e-9

# Finite differences: central differences with step EPS; the check passes when the
# relative error |num - ana| / max(|num| + |ana|, FD_FLOOR) is at most FD_TOL everywhere.
FD_EPS = 1e-6
FD_TOL = 1e-4
FD_FLOOR = 1e-6
# Probes keep every pre-activation at least this far from a kink (e.g. ReLU at 0).
FD_KINK_MARGIN = 1e-3

# The shift used by the stability check: softmax is shift-invariant, exp(1000) is not finite.
STABILITY_SHIFT = 1000.0

# Seed of the grader's probe inputs; fixed so that a grade is reproducible.
PROBE_SEED = 20240601

# Bounds on the process that runs an attempt (flags of `drill grade` override them).
TIMEOUT_SECONDS = 120.0
MEMORY_MB = 2048
OUTPUT_BYTES = 64_000
FILE_MB = 64

# How much of an attempt's own output a report shows.
SHOWN_OUTPUT_LINES = 8
