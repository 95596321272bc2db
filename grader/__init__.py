"""backprop-drill: practise the backward pass by hand, and grade it link by link."""

import threading as _threading

__version__ = "0.1.0"

# CPython 3.11 converts between source, AST objects and code with one recursion counter per
# interpreter, not per thread: two threads doing it at once (a batch, the self-test) can fail
# with "SystemError: AST constructor recursion depth mismatch" (python/cpython gh-106905). Every
# conversion of the grader's holds this lock.
AST_LOCK = _threading.RLock()


def parse_ast(source, filename="<unknown>"):
    """ast.parse(source, filename), one thread at a time (AST_LOCK)."""
    import ast

    with AST_LOCK:
        return ast.parse(source, filename)
