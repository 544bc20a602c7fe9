"""``python -m demo`` (with ``deploy/local`` on the path), as ``./run-demo.sh`` runs it."""

import sys

from .cli import main

sys.exit(main())
