"""klankkast.courtyard: the residents' courtyard page (``klankkast-courtyard``).

Residents of a courtyard see what the nodes measured, mark "ik heb nu last" (it
bothers me now) with one tap, and see what the municipality did with it. See
``courtyard/README.md``.
"""
