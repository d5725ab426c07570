"""Runs a pipeline script and pauses it mid-write, so tests/test_faults.py can kill it there.

    python fault_pause.py MARKER SCRIPT [script arguments...]

Runs ``pipelines/SCRIPT.py`` through ``script_utils.run`` (its real error and signal
handling) with the progress bar patched: after the first batch of records is written it
creates MARKER and sleeps, i.e. the output is half written in its staging directory.
"""

import importlib.util
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, ROOT)

import tfrecs  # noqa: E402,F401  - before TensorFlow
from tfrecs.pipelines import script_utils  # noqa: E402


class PausingBar:
    def __init__(self, marker):
        self.marker = marker

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def update(self, count):
        open(self.marker, "w").close()
        time.sleep(120)


def main():
    marker, name, args = sys.argv[1], sys.argv[2], sys.argv[3:]
    spec = importlib.util.spec_from_file_location(name, os.path.join(ROOT, "pipelines", f"{name}.py"))
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    script_utils.progress_bar = lambda total, description, unit="rec": PausingBar(marker)
    sys.argv = [f"{name}.py", *args]
    script_utils.run(script.main, args)


if __name__ == "__main__":
    main()
