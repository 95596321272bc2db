"""practice: the learner's own loop in a workspace.

Owns: the workspace and its `.drill/` state (workspace), a grade that knows the workspace
(grading), the learner's one history (history, in DRILL_HOME or the user's data folder) and
the merging of a workspace's old one (merge), stats, habits and spaced repetition for
`drill next` (review), hints, timed and interview drills (timing), watch, start, solution
and inject-bug/reveal (inject).
May import: settings, files, catalog, run, judge (never course: a teacher's batch is not
a learner's workspace).
"""
