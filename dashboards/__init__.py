"""Grafana dashboards as code (grafana-foundation-sdk); `python -m dashboards.generate` writes json/."""
