"""Recurring request templates: house managers keep requests that come back on a cadence."""
