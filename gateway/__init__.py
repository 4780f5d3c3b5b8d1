"""Switchyard's gateway: HTTP surface, config, request lifecycle, accounting, CLI."""

from providers.native import overlay

overlay(__name__, __path__)
