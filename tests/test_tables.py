"""The tables that word a run's error (judge/errors.py) and lay out the text report
(judge/report.py): one row per rule, each answered first by the rule it names."""
import dataclasses
import signal

import pytest

from grader.judge import errors, report
from grader.run.channel import CHANNEL_LOST, Channel
from grader.run.sandbox import Limits, RunResult

TASKS = {"backward/0": {"id": "backward/0", "kind": "call", "fn": "backward"},
         "train/0": {"id": "train/0", "kind": "train", "fn": "train", "iters": 300}}
LIMITS = Limits(timeout=60, memory_mb=512)


def ran(**changed) -> RunResult:
    """A run that exited with status 1, changed where said; fields this test does not know are None."""
    base = dict(returncode=1, signal=None, timed_out=False, memory_exceeded=False, output_flooded=False,
                stdout="", stderr="", stdout_bytes=0, stderr_bytes=0, channel=b"", duration=0.1, leftovers=0)
    known = {f.name for f in dataclasses.fields(RunResult)}
    return RunResult(**{**{f: None for f in known}, **{k: v for k, v in base.items() if k in known}, **changed})


def sent(*, done=False, running=None, load=None, **changed) -> Channel:
    """A channel on which the worker started and loaded the file, then ran `running`."""
    events = {"ready": {}, "load": load or {}}
    if done:
        events["done"] = {}
    return Channel(events=events, started=[running] if running else [], **changed)


# (rule, run, channel, error kind, message)
ROWS = [
    ("forged", ran(), sent(forged=2), "cheating",
     "2 line(s) on the grader's private result channel were not written by the grader: the attempt tried to forge "
     "its results; the score is 0"),
    ("cheated", ran(), sent(cheats=[{"what": "read", "target": "solutions/"}]), "cheating",
     "the attempt tried to read solutions/, which belongs to the grader; it was refused, and the score is 0"),
    ("load_failed", ran(), sent(load={"error": {"type": "SyntaxError", "message": "bad", "where": {"line": 3}}}),
     "import", "loading the file raised SyntaxError at line 3: bad"),
    ("stopped", ran(returncode=0), sent(), "exited",
     "the attempt's process exited with status 0 after loading the file, before grading was finished"),
    ("missing_function", ran(returncode=0), sent(done=True, load={"missing": ["backward"]}), "missing-function",
     "the file defines no function backward"),
    ("task_failed", ran(returncode=0), sent(done=True, results={"backward/0": {"error": {"kind": "memory"}}}),
     "memory", "the attempt ran out of memory while running backward (backward/0) (limit 512 MiB, --memory)"),
    ("unreadable", ran(returncode=0), sent(done=True, unreadable=3), "bad-output",
     "3 result(s) from the attempt's process could not be read back"),
]
STOP_ROWS = [
    ("not_started", ran(stderr="ImportError: numpy\n"), Channel(), "crashed",
     "the grader's worker could not start: ImportError: numpy"),
    ("out_of_time", ran(stopped="timeout"), sent(running="backward/0"), "timeout",
     "the attempt was still running after 60 s, the limit for the whole run (--timeout), and was stopped while "
     "running backward (backward/0); it kept the grader's own time limits from stopping it sooner"),
    ("alarm_reset", ran(signal=signal.SIGALRM), sent(running="train/0"), "timeout",
     "the attempt's time ran out while training (train/0), and the grader's alarm ended the whole process: "
     "the attempt had reset the alarm's handler"),
    ("flooded", ran(stopped="flood", stderr_bytes=2_000_000), sent(), "output",
     "the attempt wrote more than 2.0 MB to stderr and was stopped after loading the file"),
    ("channel_flooded", ran(stopped="channel"), sent(), "bad-output",
     "the attempt's process sent more than 67.1 MB of results, or one result over 16.8 MB, and was stopped after "
     "loading the file"),
    ("out_of_memory", ran(memory_exceeded=True), sent(), "memory",
     "the attempt ran out of its memory limit (512 MiB, --memory) and was stopped after loading the file"),
    ("out_of_cpu", ran(timed_out=True), sent(), "timeout",
     "the attempt used more than its CPU time limit and was stopped after loading the file"),
    ("killed", ran(signal=signal.SIGSEGV), sent(running="backward/0"), "crashed",
     "the attempt's process was killed by SIGSEGV (a segmentation fault) while running backward (backward/0)"),
    ("channel_lost", ran(returncode=CHANNEL_LOST), sent(), "bad-output",
     "the attempt closed or replaced the grader's result channel after loading the file; nothing more could be "
     "read back"),
    ("exited", ran(returncode=3, stderr="bye\n"), sent(), "exited",
     "the attempt's process exited with status 3 after loading the file, before grading was finished "
     "(its last words on stderr: bye)"),
]


@pytest.mark.parametrize("table, rule, run, channel, kind, message",
                         [(errors.RUN_ERRORS, *row) for row in ROWS] + [(errors.STOPPED, *row) for row in STOP_ROWS],
                         ids=[row[0] for row in ROWS + STOP_ROWS])
def test_each_rule_words_its_own_case_first(table, rule, run, channel, kind, message):
    ended = errors.Ended(run, channel, LIMITS, TASKS)
    names = [r.__name__ for r in table]
    assert all(r(ended) is None for r in table[:names.index(rule)])  # nothing before it answers
    assert table[names.index(rule)](ended) == {"kind": kind, "message": message}
    if table is errors.RUN_ERRORS:
        assert errors.run_error(run, channel, LIMITS, TASKS) == {"kind": kind, "message": message}


def test_every_rule_has_a_row_and_every_rule_and_section_an_example():
    assert [r.__name__ for r in errors.RUN_ERRORS] == [row[0] for row in ROWS]
    assert [r.__name__ for r in errors.STOPPED] == [row[0] for row in STOP_ROWS]
    for fn in [*errors.RUN_ERRORS, *errors.STOPPED, *report.SECTIONS]:
        assert (fn.__doc__ or "").strip(), fn.__name__


def test_a_finished_run_with_nothing_wrong_has_no_error():
    assert errors.run_error(ran(returncode=0), sent(done=True), LIMITS, TASKS) is None


def test_the_text_report_is_its_sections_in_order():
    checks = [report.CheckResult("dz2", False, 0, 10, "dz2 is missing", notes=["a note"]),
              report.CheckResult("loss", True, 5, 5, "loss is right")]
    r = report.Report("mlp_backprop", "a.py", checks, error={"kind": "timeout", "message": "slow"}, elapsed=65,
                      output={"stdout": ["hi"], "stdout_bytes": 3},
                      diagnosis=[report.Diagnosis("missing-n", "dz2", "error", "off by N", hint="look at N")])
    assert report.render_text(r) == "\n".join([
        "a.py  (mlp_backprop)", "",
        "Error (timeout): slow", "",
        "  FAIL  dz2     0/10  dz2 is missing",
        "                      note: a note",
        "  PASS  loss     5/5  loss is right",
        "",
        "  error: [missing-n] dz2: off by N",
        "         hint: look at N",
        "",
        "First failing check: dz2",
        "Score: 5/15  not passed yet",
        "Time since drill start: 1m 05s",
        "",
        "Your code's stdout (3 bytes), first lines:",
        "  | hi"])
