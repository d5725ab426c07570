"""The installed versions of tfrecs and its stack, read from package metadata (no imports).

Example::

    from tfrecs.core.versions import package_versions
    package_versions()["tensorflow"]   # '2.20.0'
"""

import sys
from importlib import metadata
from typing import Dict

STACK = ("tensorflow", "tf-keras", "tensorflow-recommenders", "scann", "numpy")


def package_versions() -> Dict[str, str]:
    """``{"tfrecs": ..., "tensorflow": ..., ..., "python": ...}``; "not installed" for a missing package."""
    from tfrecs import __version__

    found = {"tfrecs": __version__}
    for package in STACK:
        try:
            found[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            found[package] = "not installed"
    found["python"] = sys.version.split()[0]
    return found
