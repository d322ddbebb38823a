"""``[rollups]`` of server.toml."""

from __future__ import annotations

from common.configkit import Section, check_range


class RollupsConfig(Section):
    enabled: bool = True
    interval: float = 60.0  # s between runs: late data shows within this
    current_every: float = 300.0  # s: the hour under way is rolled up this often (at a run)
    settle: float = 60.0  # s after an hour ends before it is rolled up as a whole
    span_days: int = 31  # a long recomputation goes by spans this long (memory stays flat)

    def __post_init__(self):
        check_range("interval", self.interval, 0.05, 3600)
        check_range("current_every", self.current_every, 0, 3600)
        check_range("settle", self.settle, 0, 3600)
        check_range("span_days", self.span_days, 1, 366)
