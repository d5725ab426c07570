"""How loud TensorFlow, absl and ScaNN are under the ``tfrecs`` command.

By default a ``tfrecs`` command prints only its own lines: TensorFlow's C++ start-up
banners (oneDNN, CUDA drivers, ``cuInit``, CPU instructions), ScaNN's and grappler's absl
lines (``partitioner_factory_base.cc``, "Could not normalize centroid", ``PredictCost``),
"Local rendezvous is aborting" and the Python warnings of TensorFlow / tf_keras are hidden.
``tfrecs --log-level {error,warning,info,debug}`` (or ``-v``) brings them back.

``setup(level)`` must run before TensorFlow is imported. It sets ``TF_CPP_MIN_LOG_LEVEL``
(unless the user set it and gave no ``--log-level``), the Python loggers of TensorFlow and
absl, and, because ScaNN's and grappler's absl lines ignore ``TF_CPP_MIN_LOG_LEVEL``, routes
file descriptor 2 through a line filter that drops absl-format lines below the level.
Python's own ``sys.stderr`` (tfrecs' one-line errors, tracebacks) bypasses the filter.

Only the console command calls ``setup``: a library import changes nothing.
"""

import atexit
import faulthandler
import logging
import os
import re
import sys
import threading
import warnings
from typing import Optional

LEVELS = ("error", "warning", "info", "debug")
DEFAULT_LEVEL = "error"
_TF_CPP_LEVEL = {"error": "3", "warning": "1", "info": "0", "debug": "0"}
_FROM_TF_CPP_LEVEL = {"0": "info", "1": "warning", "2": "error", "3": "error"}
_PYTHON_LEVEL = {"error": logging.ERROR, "warning": logging.WARNING, "info": logging.INFO, "debug": logging.DEBUG}
# absl / glog line prefix: severity letter, MMDD, time, thread id, file:line]
_ABSL_LINE = r"[{letters}]\d{{4}} \d\d:\d\d:\d+\.\d+\s+\d+ [^\]\s]+:\d+\] "
_ABSL_BANNER = r"WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR"
_NOISY_PACKAGES = r"(tensorflow|tf_keras|keras|tensorflow_recommenders|scann|absl|tensorflow_datasets)(\..*)?"

_filter: Optional["_StderrFilter"] = None


def effective_level(level: Optional[str] = None) -> str:
    """``level`` if given, else the one the user's ``TF_CPP_MIN_LOG_LEVEL`` implies, else ``error``."""
    if level is not None:
        if level not in LEVELS:
            raise ValueError(f"unknown log level {level!r}; known: {', '.join(LEVELS)}")
        return level
    return _FROM_TF_CPP_LEVEL.get(os.environ.get("TF_CPP_MIN_LOG_LEVEL", "").strip(), DEFAULT_LEVEL)


def dropped_lines(level: str) -> Optional["re.Pattern[bytes]"]:
    """The stderr lines hidden at ``level`` (None: hide nothing)."""
    letters = {"error": "IW", "warning": "I"}.get(level)
    if letters is None:
        return None
    return re.compile(f"(?:{_ABSL_LINE.format(letters=letters)}|{_ABSL_BANNER})".encode())


def setup(level: Optional[str] = None, filter_stderr: bool = True) -> str:
    """Quietens TensorFlow / absl / ScaNN for this process; returns the level applied.

    Args:
        level: one of ``LEVELS``; None keeps the user's ``TF_CPP_MIN_LOG_LEVEL`` if set,
            else ``error`` (only tfrecs' own lines).
        filter_stderr: route C-level stderr through the absl line filter (needs a real fd 2).
    """
    explicit = level is not None
    level = effective_level(level)
    if explicit or "TF_CPP_MIN_LOG_LEVEL" not in os.environ:
        os.environ["TF_CPP_MIN_LOG_LEVEL"] = _TF_CPP_LEVEL[level]
    python_level = _PYTHON_LEVEL[level]
    for name in ("tensorflow", "absl", "tf_keras", "h5py"):
        logging.getLogger(name).setLevel(python_level)
    try:
        from absl import logging as absl_logging

        absl_logging.set_verbosity(level)
    except ImportError:  # absl comes with TensorFlow; without it there is nothing to quieten
        pass
    if python_level >= logging.ERROR:
        warnings.filterwarnings("ignore", module=_NOISY_PACKAGES)
    pattern = dropped_lines(level)
    if filter_stderr and pattern is not None:
        _install_filter(pattern)
    return level


def _install_filter(pattern: "re.Pattern[bytes]") -> None:
    global _filter
    if _filter is not None:
        _filter.pattern = pattern
        return
    try:
        _filter = _StderrFilter(pattern)
    except (OSError, ValueError, AttributeError):  # no real fd 2 (embedded, redirected oddly): stay unfiltered
        _filter = None


class _StderrFilter:
    """fd 2 -> a pipe read by a thread that forwards every line ``pattern`` does not match."""

    def __init__(self, pattern: "re.Pattern[bytes]"):
        self.pattern = pattern
        sys.stderr.flush()
        self._target = os.dup(2)
        read_fd, write_fd = os.pipe()
        os.dup2(write_fd, 2)
        os.close(write_fd)
        self._read_fd = read_fd
        # Python writes (tfrecs errors, tracebacks, warnings) go straight to the real stderr.
        encoding = getattr(sys.stderr, "encoding", None) or "utf-8"
        sys.stderr = open(os.dup(self._target), "w", buffering=1, encoding=encoding, errors="backslashreplace")
        if faulthandler.is_enabled():
            faulthandler.enable(file=sys.stderr)
        self._thread = threading.Thread(target=self._pump, name="tfrecs-stderr-filter", daemon=True)
        self._thread.start()
        atexit.register(self.close)

    def _forward(self, lines) -> None:
        kept = b"".join(line + b"\n" for line in lines if not self.pattern.match(line))
        if kept:
            os.write(self._target, kept)

    def _pump(self) -> None:
        pending = b""
        while True:
            try:
                chunk = os.read(self._read_fd, 65536)
            except OSError:
                break
            if not chunk:
                break
            *lines, pending = (pending + chunk).split(b"\n")
            self._forward(lines)
            if len(pending) > 65536:  # a very long line without newline: pass it on as it is
                os.write(self._target, pending)
                pending = b""
        if pending and not self.pattern.match(pending):
            os.write(self._target, pending)

    def close(self) -> None:
        """Restores fd 2 and forwards what is left in the pipe."""
        try:
            sys.stderr.flush()
            os.dup2(self._target, 2)
        except (OSError, ValueError):
            return
        self._thread.join(timeout=2.0)
