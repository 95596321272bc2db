"""run: the attempt's process, and the only code that starts it or talks to it.

Owns: starting the worker behind the kernel's walls (isolation.py: which level, the box
and its slot; box.py builds the walls inside the worker's process) and the sandbox's
limits and clean-up (sandbox.py), the worker itself (worker.py, wire.py, partial.py,
box.py: standalone scripts run in the attempt's process, never imported by the grader),
handing it its plan and reading its private channel back (attempt.py, channel.py). It
judges nothing and never calls up.
May import: settings, files (nothing else of the grader: no catalogue, no judge).
"""
