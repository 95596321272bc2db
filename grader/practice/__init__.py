"""practice: the learner's own loop in a workspace.

Owns: the workspace and its `.drill/` state (workspace), a grade that knows the workspace
(grading), the history (history), stats, hints, timed drills (timing), watch, start,
solution and inject-bug/reveal (inject).
May import: settings, files, catalog, run, judge (never course: a teacher's batch is not
a learner's workspace).
"""
