"""Runs a check script's main and leaves without the interpreter's teardown.

deltalake's native threads can abort the interpreter at exit ("terminate
called without an active exception") after the work is done, which turns
a pass into a failure. `run(main)` ends the process with os._exit once
main has returned (0) or failed (1, with its message or traceback), after
flushing what it printed.
"""
import os
import sys
import traceback


def _leave(code):
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def run(main):
    try:
        main()
    except SystemExit as e:
        if isinstance(e.code, str):
            print(e.code, file=sys.stderr)
            _leave(1)
        _leave(e.code or 0)
    except BaseException:
        traceback.print_exc()
        _leave(1)
    _leave(0)
