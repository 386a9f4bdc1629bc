"""Per-algorithm presets as YAML data (``<algo>.yaml``, keyed by env id), read with
``importlib.resources``."""
