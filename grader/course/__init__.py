"""course: many strangers' attempts, and what a course platform reads.

Owns: batches (batch), the output formats (formats: JSON, Gradescope, JUnit, CSV, the
batch table), the Gradescope bundle (bundle), and the pictures (plot).
May import: settings, files, catalog, run, judge (never practice: a submission's `.drill/`
is not trusted).
"""
