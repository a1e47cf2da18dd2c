"""Proving the Grafana boards without a Grafana server: the plugin's macro expander and a sample history."""
