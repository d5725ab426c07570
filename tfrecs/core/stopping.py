"""SIGTERM as a stop request: unwinds at once, or at the next batch boundary while a fit runs.

Raising from a signal handler while TensorFlow's threads are inside a training step can crash
the process (a ``tfrecs train`` child once died with SIGSEGV instead of exiting 143). So
while ``stop_at_batch_boundaries()`` is active (``tfrecs.training.fit`` wraps
``model.fit`` in it), the handler only records the request, and the ``StopWhenRequested``
callback raises ``Stopped`` between batches, where no step is in flight and the last
completed epoch's backup is untouched. Outside a fit the handler raises at once.

Example::

    signal.signal(signal.SIGTERM, on_sigterm)
    with stop_at_batch_boundaries():
        model.fit(data, callbacks=[StopWhenRequested()])   # raises Stopped between batches
"""

import contextlib
from typing import Iterator

_state = {"fits": 0, "requested": False}


class Stopped(BaseException):
    """SIGTERM asked the command to stop; unwinds like ``KeyboardInterrupt`` (exit status 143)."""

    status = 143


def on_sigterm(signum, frame) -> None:
    """The SIGTERM handler: records the request inside a fit, raises ``Stopped`` outside one."""
    if _state["fits"]:
        _state["requested"] = True
        return
    raise Stopped()


def raise_if_requested() -> None:
    """Raises ``Stopped`` (once) when SIGTERM arrived since the last call."""
    if _state["requested"]:
        _state["requested"] = False
        raise Stopped()


@contextlib.contextmanager
def stop_at_batch_boundaries() -> Iterator[None]:
    """Within this block SIGTERM waits for ``raise_if_requested``; a request still pending
    when the block ends (it arrived after the last batch) raises ``Stopped`` there."""
    _state["fits"] += 1
    try:
        yield
    finally:
        _state["fits"] -= 1
    if not _state["fits"]:
        raise_if_requested()


def reset() -> None:
    """Forgets a pending request (the CLI calls it when it installs its handler)."""
    _state["requested"] = False
