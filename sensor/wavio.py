"""Streaming WAV reader: 16/24/32-bit PCM and 32/64-bit float, first channel only.

Reads the RIFF/WAVE container (Microsoft RIFF, ``fmt `` and ``data`` chunks),
including ``WAVE_FORMAT_EXTENSIBLE`` (0xFFFE) whose sub-format GUID names PCM or
IEEE float. The file is read block by block and never loaded whole, so memory
stays flat for recordings of any length. Samples come out as float64 with full
scale at +/-1.0: PCM is divided by 2^(bits-1) (so int16 -32768 reads -1.0 and
32767 reads 0.99997), float data is passed through unchanged (NaN/inf included:
the meter counts them).

A ``data`` chunk size that overruns the file (a recorder that never patched its
header, or 0xFFFFFFFF) is read up to the end of the file; a trailing partial frame
is dropped.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Final

import numpy as np
import numpy.typing as npt

from .errors import WavError

__all__ = ["WavError", "WavInfo", "WavReader"]

_PCM: Final = 1
_FLOAT: Final = 3
_EXTENSIBLE: Final = 0xFFFE
_GUID_TAIL: Final = b"\x00\x00\x00\x00\x10\x00\x80\x00\x00\xaa\x00\x38\x9b\x71"


@dataclass(frozen=True)
class WavInfo:
    """What the ``fmt `` chunk says."""

    fs_hz: int
    channels: int
    bits: int
    is_float: bool
    n_frames: int

    @property
    def duration_s(self) -> float:
        return self.n_frames / self.fs_hz

    def describe(self) -> str:
        kind = "float" if self.is_float else "PCM"
        return f"{self.bits}-bit {kind}, {self.channels} channel(s), {self.fs_hz} Hz, {self.duration_s:.1f} s"


class WavReader:
    """Open a WAV file for streaming; use as a context manager.

    Parameters
    ----------
    path : str or Path
        The file.

    Raises
    ------
    WavError
        Missing/empty file, not RIFF/WAVE, no ``fmt ``/``data`` chunk, or an
        unsupported format (only 16/24/32-bit PCM and 32/64-bit float).
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        try:
            self._f: BinaryIO = open(self.path, "rb")  # noqa: SIM115 - closed by close()
        except OSError as err:
            raise WavError(f"{self.path}: cannot open: {err.strerror or err}") from None
        try:
            self.info, self._data_start, self._data_bytes = self._parse_header()
        except BaseException:
            self._f.close()
            raise

    def __enter__(self) -> WavReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._f.close()

    def _parse_header(self) -> tuple[WavInfo, int, int]:
        f = self._f
        size = self.path.stat().st_size
        if size == 0:
            raise WavError(f"{self.path}: empty file, not a WAV")
        head = f.read(12)
        if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
            if head[:4] in (b"RF64", b"BW64"):
                raise WavError(f"{self.path}: RF64/BW64 WAV is not supported; use a RIFF WAV")
            raise WavError(f"{self.path}: not a WAV file (no RIFF/WAVE header)")
        fmt: tuple[int, int, int, int, int] | None = None
        while True:
            ch = f.read(8)
            if len(ch) < 8:
                if fmt is None:
                    raise WavError(f"{self.path}: WAV has no 'fmt ' chunk")
                raise WavError(f"{self.path}: WAV has no 'data' chunk")
            cid, csize = ch[:4], struct.unpack("<I", ch[4:])[0]
            if cid == b"fmt ":
                body = f.read(csize)
                if len(body) < 16:
                    raise WavError(f"{self.path}: WAV 'fmt ' chunk is truncated")
                tag, channels, fs, _, block_align, bits = struct.unpack("<HHIIHH", body[:16])
                if tag == _EXTENSIBLE:
                    if len(body) < 40 or body[26:40] != _GUID_TAIL:
                        raise WavError(
                            f"{self.path}: WAVE_FORMAT_EXTENSIBLE with an unknown sub-format"
                        )
                    tag = struct.unpack("<H", body[24:26])[0]
                fmt = (tag, channels, fs, block_align, bits)
                if csize % 2:
                    f.read(1)
            elif cid == b"data":
                if fmt is None:
                    raise WavError(f"{self.path}: WAV 'data' chunk comes before 'fmt '")
                start = f.tell()
                nbytes = min(csize, size - start)
                break
            else:
                f.seek(csize + (csize % 2), 1)
        tag, channels, fs, block_align, bits = fmt
        if tag == _PCM and bits in (16, 24, 32):
            is_float = False
        elif tag == _FLOAT and bits in (32, 64):
            is_float = True
        else:
            kind = {_PCM: "PCM", _FLOAT: "float"}.get(tag, f"format tag 0x{tag:04x}")
            raise WavError(
                f"{self.path}: unsupported WAV format {bits}-bit {kind}; "
                "supported: 16/24/32-bit PCM, 32/64-bit float"
            )
        if channels < 1 or block_align != channels * bits // 8:
            raise WavError(
                f"{self.path}: inconsistent WAV header: {channels} channel(s), block align {block_align}"
            )
        n_frames = nbytes // block_align
        return WavInfo(int(fs), int(channels), int(bits), is_float, int(n_frames)), start, nbytes

    def blocks(self, frames: int) -> Iterator[npt.NDArray[np.float64]]:
        """Yield the first channel as float64 blocks of ``frames`` frames (the last may be shorter)."""
        if frames < 1:
            raise ValueError(f"frames must be >= 1; got {frames}")
        info = self.info
        width = info.bits // 8
        align = info.channels * width
        self._f.seek(self._data_start)
        left = info.n_frames
        while left > 0:
            k = min(frames, left)
            raw = self._f.read(k * align)
            k = len(raw) // align
            if k == 0:
                return
            left -= k
            yield self._decode(raw[: k * align], k)

    def _decode(self, raw: bytes, k: int) -> npt.NDArray[np.float64]:
        info = self.info
        width = info.bits // 8
        buf = np.frombuffer(raw, dtype=np.uint8).reshape(k, info.channels * width)[:, :width]
        if info.is_float:
            dt = "<f4" if info.bits == 32 else "<f8"
            return np.ascontiguousarray(buf).view(dt).reshape(k).astype(np.float64)
        if info.bits == 24:
            b = buf.astype(np.int32)
            v = b[:, 0] | (b[:, 1] << 8) | (b[:, 2] << 16)
            v = np.where(v >= 1 << 23, v - (1 << 24), v)
            return v.astype(np.float64) / float(1 << 23)
        dt = "<i2" if info.bits == 16 else "<i4"
        return np.ascontiguousarray(buf).view(dt).reshape(k).astype(np.float64) / float(
            1 << (info.bits - 1)
        )
