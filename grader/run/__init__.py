"""run: the attempt's process, and the only code that starts it or talks to it.

Owns: starting the worker behind the sandbox's boundary (sandbox.py: limits, clean-up),
the worker itself (worker.py, wire.py, partial.py: standalone scripts run in the attempt's
process, never imported by the grader), handing it its plan and reading its private
channel back (attempt.py, channel.py). It judges nothing and never calls up.
May import: settings, files (nothing else of the grader: no catalogue, no judge).
"""
