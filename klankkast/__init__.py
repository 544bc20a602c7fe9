"""klankkast: noise-nuisance sensing and correlation pipeline.

The three parts live in top-level folders of the source tree and install as
``klankkast.sensor``, ``klankkast.ingest`` and ``klankkast.analysis``.
"""

__version__ = "0.1.0"
