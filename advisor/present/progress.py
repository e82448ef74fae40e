"""A spinner on stderr, shown only when a step turns out slow and only on a terminal."""

from __future__ import annotations

import sys
from contextlib import contextmanager

SHOW_AFTER_S = 0.5  # issue 8: progress only when something is slow (detection > 0.5 s)
FRAME_INTERVAL_S = 0.1
FRAMES = "|/-\\"


@contextmanager
def spinner(label: str, stream=None, enabled: bool = True, show_after_s: float = SHOW_AFTER_S):
    """Run the body; if it takes longer than `show_after_s` and `stream` is a terminal, spin until it ends and
    then erase the line, so nothing is left in the output."""
    stream = stream or sys.stderr
    if not enabled or not (hasattr(stream, "isatty") and stream.isatty()):
        yield
        return
    import threading

    done = threading.Event()
    text = f"{label}..."

    def spin():
        if done.wait(show_after_s):
            return
        frame = 0
        while not done.is_set():
            stream.write(f"\r{FRAMES[frame % len(FRAMES)]} {text}")
            stream.flush()
            frame += 1
            done.wait(FRAME_INTERVAL_S)
        stream.write("\r" + " " * (len(text) + 2) + "\r")
        stream.flush()

    thread = threading.Thread(target=spin, daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join()
