"""The built-in web dashboard: a static page and its assets, served by starlette (see `routes`)."""

from gateway.dashboard.routes import dashboard_routes

__all__ = ["dashboard_routes"]
