"""klankkast.sensor: the node that runs on a Raspberry Pi.

Kept free of heavy imports so that ``klankkast.sensor.wire`` (the wire contract,
standard library only) costs nothing to import from ``klankkast.ingest``.
"""
