"""Ctrl-C during a long call, for the tests that a fit stops promptly."""
import os
import signal
import threading
import time

import pytest


def assert_ctrl_c_stops(call, after=0.5, within=10.0):
    """Sends SIGINT to this process `after` seconds into call(); asserts that call raises
    KeyboardInterrupt less than `within` seconds after it started."""
    # Python's own handler for the call: a shell's background job starts with SIGINT ignored, and
    # then the signal would be lost and the call run to its end.
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    timer = threading.Timer(after, lambda: os.kill(os.getpid(), signal.SIGINT))
    try:
        start = time.perf_counter()
        timer.start()
        with pytest.raises(KeyboardInterrupt):
            call()
        timer.join()
    finally:
        signal.signal(signal.SIGINT, previous)
    assert time.perf_counter() - start < within
