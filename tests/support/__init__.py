"""Test-support helpers: an in-process OTLP receiver and a real Prometheus server."""
