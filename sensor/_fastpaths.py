"""The node's fast paths, each on a library's or our own encoding's internals
(``[node] fast_paths``, default on; off, the node runs the plain paths only).

* :func:`scipy_routines`: scipy's in-place sections loop (behind
  ``scipy.signal.sosfilt``) and pocketfft's real FFT (behind ``scipy.fft.rfft``),
  loaded from their compiled files without running ``scipy.signal/__init__`` and
  ``scipy.fft/__init__`` (which pull in sparse, linalg, special and optimize: about
  70 MB resident a running node never uses). Used by
  :class:`~klankkast.sensor.dsp.Meter`; the plain path calls the public functions.
  ``tests/unit/sensor/test_sensor_lightcore.py`` checks the routines equal the
  public functions bit for bit and the meter reads the same either way.
* :func:`splice_frame_builder`: ``build(seq)`` that writes the outbox sequence number
  into a frame encoded once, instead of validating and serialising it again per
  ``seq`` (:func:`klankkast.sensor.service.frame_builder`).

The third fast path of the node, the in-memory copy of the pending rows, is a part of
:class:`~klankkast.sensor.outbox.SqliteOutbox` (``mirror=``) because it shares the
outbox's lock and bookkeeping.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

__all__ = ["scipy_routines", "splice_frame_builder"]


def _load_scipy_extension(package: str, module: str) -> Any:
    """A compiled scipy module loaded from its file without its package's ``__init__``.

    The core calls two of scipy's C/C++ routines directly: the in-place sections loop
    behind ``scipy.signal.sosfilt`` and pocketfft's real FFT behind
    ``scipy.fft.rfft`` (the same code those functions run, minus argument checks,
    copies and backend dispatch). Importing them by their dotted names would first
    run ``scipy.signal/__init__`` and ``scipy.fft/__init__``, which pull in
    scipy.signal, sparse, linalg, special and optimize: about 70 MB resident that a
    running node never uses. Both modules need only numpy. Returns None when the
    layout differs (other scipy versions); the core then uses the public functions,
    with the same results.
    """
    import importlib
    import importlib.machinery
    import importlib.util
    import sys
    from pathlib import Path

    import scipy

    name = f"scipy.{package}.{module}"
    mod = sys.modules.get(name)
    try:
        if mod is None and f"scipy.{package.split('.')[0]}" in sys.modules:
            mod = importlib.import_module(name)  # the package is loaded already
        if mod is None:
            folder = Path(scipy.__file__).parent.joinpath(*package.split("."))
            for suffix in importlib.machinery.EXTENSION_SUFFIXES:
                path = folder / f"{module}{suffix}"
                if path.is_file():
                    spec = importlib.util.spec_from_file_location(name, path)
                    if spec is None or spec.loader is None:
                        return None
                    mod = importlib.util.module_from_spec(spec)
                    sys.modules[name] = mod
                    try:
                        spec.loader.exec_module(mod)
                    except BaseException:
                        sys.modules.pop(name, None)
                        raise
                    break
        return mod
    except Exception:  # pragma: no cover - other scipy layouts
        return None


@functools.cache
def scipy_routines() -> tuple[Any, Any]:
    """``(sosfilt_inplace, r2c)``: scipy's ``_sosfilt._sosfilt`` and pocketfft's ``r2c``,
    loaded once on first use; ``None`` for one that this scipy's layout lacks (the
    meter then calls the public function)."""
    sosfilt = getattr(_load_scipy_extension("signal", "_sosfilt"), "_sosfilt", None)
    r2c = getattr(_load_scipy_extension("fft._pocketfft", "pypocketfft"), "r2c", None)
    return sosfilt, r2c


def splice_frame_builder(
    base: bytes, check_seq: Callable[[int], None]
) -> Callable[[int], bytes] | None:
    """``build(seq)`` from ``base``, the frame encoded with ``seq`` 0 as its last key.

    ``wire.encode`` puts ``seq`` last, so ``build`` only swaps the number at the end:
    the bytes are exactly those of encoding the frame with that ``seq``. ``None`` when
    ``base`` does not end that way (``wire.encode`` changed its layout): use the plain
    builder. ``check_seq`` raises for a ``seq`` the wire contract refuses.
    """
    tail = b',"seq":0}'
    if not base.endswith(tail):
        return None
    head = base[: -len(tail)]

    def build(seq: int) -> bytes:
        if seq == 0:
            return base
        check_seq(seq)
        return b'%s,"seq":%d}' % (head, seq)

    return build
