"""``klankkast-sensor devices``: audio input devices with the sample rates they accept."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from klankkast.sensor.config import SAMPLERATES_HZ

__all__ = ["add_arguments", "list_inputs", "main"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "List PortAudio input devices, their channels and which of the node's sample rates "
        f"({', '.join(map(str, SAMPLERATES_HZ))} Hz) each accepts. Use the name (or a "
        "unique part of it) or the index as [audio] device. Exit status 0 listed; 1 PortAudio "
        "cannot be queried or there is no input device; 2 usage error."
    )
    parser.add_argument("--json", action="store_true", help="one JSON object per device")


def list_inputs() -> list[dict[str, Any]]:
    """Input devices as dicts: index, name, hostapi, channels, default_hz, rates_hz."""
    import sounddevice as sd

    out = []
    apis = sd.query_hostapis()
    for dev in sd.query_devices():
        if dev["max_input_channels"] <= 0:
            continue
        rates = []
        for rate in SAMPLERATES_HZ:
            try:
                sd.check_input_settings(device=dev["index"], samplerate=rate, channels=1)
                rates.append(rate)
            except Exception:
                pass
        out.append(
            {
                "index": dev["index"],
                "name": dev["name"],
                "hostapi": apis[dev["hostapi"]]["name"],
                "channels": dev["max_input_channels"],
                "default_hz": int(dev["default_samplerate"]),
                "rates_hz": rates,
            }
        )
    return out


def main(args: argparse.Namespace) -> int:
    try:
        devices = list_inputs()
    except Exception as err:  # PortAudio missing or broken
        print(f"klankkast-sensor devices: cannot query PortAudio: {err}", file=sys.stderr)
        return 1
    if not devices:
        print("klankkast-sensor devices: no audio input devices found", file=sys.stderr)
        return 1
    for d in devices:
        if args.json:
            print(json.dumps(d))
        else:
            rates = ", ".join(map(str, d["rates_hz"])) or "none of the node's rates"
            print(
                f"{d['index']:3d}  {d['name']}  [{d['hostapi']}]  {d['channels']} ch, "
                f"default {d['default_hz']} Hz, accepts {rates}"
            )
    return 0
