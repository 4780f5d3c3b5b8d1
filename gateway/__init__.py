"""Switchyard's gateway: HTTP surface, config, request lifecycle, accounting, CLI."""
