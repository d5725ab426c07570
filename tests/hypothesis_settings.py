"""The shared hypothesis profile of the property suites (``tests/test_properties_*.py``).

Every property file imports this module, which registers and loads the profile, so CI runs
the same bounded, reproducible examples on every machine:

* ``tfrecs`` (default): ``max_examples=25`` per property, ``derandomize=True`` (the examples
  are a fixed function of the test, so a failure reproduces on any machine), ``deadline=None``
  (TensorFlow's first call per shape is slow and would trip the 200 ms default), no example
  database (``.hypothesis/`` keeps only its own caches), and ``print_blob=True`` (a failure prints
  the ``@reproduce_failure`` line).
* ``tfrecs-thorough``: the same with 500 examples and random (not derandomized) search, for a
  local hunt: ``TFRECS_HYPOTHESIS_PROFILE=tfrecs-thorough pytest tests/test_properties_*.py``.

Example::

    import hypothesis_settings  # noqa: F401  (loads the profile)
    from hypothesis import given
"""

import os

from hypothesis import HealthCheck, settings

PROFILE = "tfrecs"
THOROUGH = "tfrecs-thorough"
ENVIRONMENT_VARIABLE = "TFRECS_HYPOTHESIS_PROFILE"

_COMMON = dict(
    deadline=None,
    database=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

settings.register_profile(PROFILE, max_examples=25, derandomize=True, **_COMMON)
settings.register_profile(THOROUGH, max_examples=500, derandomize=False, **_COMMON)
settings.load_profile(os.environ.get(ENVIRONMENT_VARIABLE, PROFILE))
