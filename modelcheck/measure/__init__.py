"""Pure measurement: paired statistics, latency timing, peak memory, output comparison.

Nothing here knows about gate files, checks or pytest; the check kinds in ``modelcheck.checks``
turn these measurements into verdicts.
"""
