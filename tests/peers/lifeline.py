"""Ends this emulator when the test process that started it is gone.

The Rust harness keeps each emulator in a static, and statics are never dropped, so the test
binary cannot stop it on exit. Instead the emulator watches its parent: once it has been
re-parented (the test process exited or was killed), it exits too.
"""

import os
import threading
import time


def hold(on_exit=None):
    """Starts the watch; `on_exit` runs first when the parent is gone (e.g. to remove files)."""
    parent = os.getppid()

    def watch():
        while os.getppid() == parent:
            time.sleep(0.5)
        if on_exit is not None:
            on_exit()
        os._exit(0)

    threading.Thread(target=watch, daemon=True).start()
