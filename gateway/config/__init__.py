"""Configuration: schema, `${ENV}` interpolation, validation with YAML paths."""

from gateway.config.loader import ConfigError, format_path, load_config, parse_config
from gateway.config.schema import GatewayConfig

__all__ = ["ConfigError", "GatewayConfig", "format_path", "load_config", "parse_config"]
