"""A small independent WAV writer for the tests (RIFF layout written out by hand)."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np

_GUID_TAIL = b"\x00\x00\x00\x00\x10\x00\x80\x00\x00\xaa\x00\x38\x9b\x71"


def encode_samples(x: np.ndarray, bits: int, is_float: bool) -> bytes:
    """Frames x channels float in [-1, 1] -> little-endian sample bytes."""
    if is_float:
        return x.astype("<f4" if bits == 32 else "<f8").tobytes()
    scale = 2 ** (bits - 1)
    q = np.clip(np.round(x * scale), -scale, scale - 1).astype(np.int64)
    if bits == 16:
        return q.astype("<i2").tobytes()
    if bits == 32:
        return q.astype("<i4").tobytes()
    if bits == 24:
        u = (q & 0xFFFFFF).astype("<u4").reshape(-1)
        b = np.stack([u & 0xFF, (u >> 8) & 0xFF, (u >> 16) & 0xFF], axis=1).astype(np.uint8)
        return b.tobytes()
    if bits == 8:
        return (q + 128).astype(np.uint8).tobytes()
    raise ValueError(bits)


def write_wav(
    path: Path,
    x: np.ndarray,
    fs_hz: int,
    bits: int = 16,
    is_float: bool = False,
    extensible: bool = False,
    extra_chunk: bool = False,
    data_size: int | None = None,
) -> Path:
    """Write ``x`` (1-D mono or frames x channels) as a WAV file."""
    x2 = x[:, None] if x.ndim == 1 else x
    channels = x2.shape[1]
    data = encode_samples(x2, bits, is_float)
    tag = 3 if is_float else 1
    align = channels * bits // 8
    if extensible:
        fmt = struct.pack("<HHIIHH", 0xFFFE, channels, fs_hz, fs_hz * align, align, bits)
        fmt += struct.pack("<HHI", 22, bits, 0) + struct.pack("<H", tag) + _GUID_TAIL
    else:
        fmt = struct.pack("<HHIIHH", tag, channels, fs_hz, fs_hz * align, align, bits)
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt
    if extra_chunk:
        info = b"INFOISFT\x05\x00\x00\x00test\x00\x00"
        body += b"LIST" + struct.pack("<I", len(info)) + info
    size = len(data) if data_size is None else data_size
    body += b"data" + struct.pack("<I", size) + data
    path.write_bytes(b"RIFF" + struct.pack("<I", len(body)) + body)
    return path
