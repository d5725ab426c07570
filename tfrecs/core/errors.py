"""The exception classes of tfrecs: catch ``TfrecsError`` for any failure tfrecs names itself.

Each concrete error also subclasses the built-in it refines (``ValueError`` for bad input,
``OSError`` for I/O, ``KeyError`` for a missing key), so existing ``except ValueError``
code keeps working. The CLI prints them as one line ``tfrecs: error: <message>`` with exit
status 2.

Example::

    try:
        load_dataset("ml-100k", data_dir="/does/not/exist")
    except TfrecsError as error:
        print(error)
"""


class TfrecsError(Exception):
    """Base class of every error tfrecs raises on purpose (the message names the culprit)."""


class InputError(TfrecsError, ValueError):
    """Bad input: a file's content, an argument, a feature value."""


class StorageError(TfrecsError, OSError):
    """A path that cannot be read or written (missing, no permission, disk full)."""
