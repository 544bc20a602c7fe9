"""klankkast.analysis: complaints/visits import, episodes, correlation, patrol plan, reports."""
