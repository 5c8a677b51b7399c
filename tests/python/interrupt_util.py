"""Ctrl-C during a long call, for the tests that a fit stops promptly."""
import os
import signal
import threading
import time

import pytest


def assert_ctrl_c_stops(call, after=0.5, within=10.0):
    """Sends SIGINT to this process `after` seconds into call(); asserts that call raises
    KeyboardInterrupt less than `within` seconds after it started."""
    timer = threading.Timer(after, lambda: os.kill(os.getpid(), signal.SIGINT))
    start = time.perf_counter()
    timer.start()
    with pytest.raises(KeyboardInterrupt):
        call()
    timer.join()
    assert time.perf_counter() - start < within
