"""Observability checks: Prometheus alert rules, the Grafana dashboard, the compose overlay.

Helpers for other tests: `observability.promstack` (a real Prometheus on loopback that scrapes
given targets and evaluates the dashboard's and the alert rules' expressions).
"""
