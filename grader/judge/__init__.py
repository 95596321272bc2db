"""judge: one attempt graded into a Report.

Owns: resolving what is graded (grade.resolve -> Target), reading the file without
running it (source), planning the probes and running the worker (plan, rerun), the checks
and comparisons (probes/, checks, compare), the diagnosis (diagnose), the wording of what
went wrong (errors), scoring, and the Report with its text rendering (report). The
self-test of the bug catalogue (selftest) grades mutants here too.
May import: settings, files, catalog, run.
"""
