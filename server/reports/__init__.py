"""Utilisation reports for the funder: time in state, jobs, per printer/site/organisation/county/network."""
