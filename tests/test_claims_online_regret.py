"""docs/results/online_regret/table.md recomputed from the published arrays
(tests/online_claims.py: NumPy, not the report code).

Bug caught: a table left from another run than the arrays published beside it, or a summary
statistic computed wrongly (standard error, slope range, ratio to the uniform leader).
"""

from __future__ import annotations

from claims import manifest
from online_claims import check_table

RUN = "online_regret"


def test_table_md():
    config = manifest(RUN)["config"]
    assert check_table(RUN) == len(config["games"]) * len(config["learners"])
