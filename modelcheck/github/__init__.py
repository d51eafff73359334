"""Everything GitHub Actions sees of a results report: the job summary, annotations, the PR comment, the issue.

The modules read a report (never run a model) and import nothing heavy; the GitHub REST client
(PyGithub, the ``github`` extra) is imported only when a comment is posted.

- :mod:`modelcheck.github.judge`: which checks a stage judges and the stage's status, as ``modelcheck gate``
- :mod:`modelcheck.github.summary`: job-summary Markdown within GitHub's 1 MiB per step
- :mod:`modelcheck.github.annotations`: ``::error file=,line=`` workflow commands, 10 per level
- :mod:`modelcheck.github.comment`: one sticky pull-request comment per workflow, gate set and matrix leg
- :mod:`modelcheck.github.issue`: one monitoring issue per key, created, updated and closed by scheduled runs
- :mod:`modelcheck.github.context`: what the ``GITHUB_*`` variables and the event payload say
- :mod:`modelcheck.github.cli`: the ``modelcheck github ...`` commands
"""

from __future__ import annotations
