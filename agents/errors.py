"""The one error type for a refused setting, importable without numpy or torch
(controller.config and sdncep check use it before anything heavy is loaded)."""


class ConfigError(ValueError):
    """A configuration value or key was refused."""
