"""Grafana per organisation: each organisation of the inventory gets a Grafana organisation of
its own (a data source reading its own InfluxDB database with its own reader, its dashboards),
the network gets the aggregate dashboards over the network database (docs/grafana-organisations.md).

``orgs`` reads the organisations from the inventory, ``datasource`` holds the one data source
definition that both the generated provisioning files (dashboards/generate.py) and the
``printfarm-server grafana-setup`` command (``setup``) use.
"""
