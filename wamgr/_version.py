"""wamgr's version, in this one place (``pyproject.toml`` reads it; ``wamgr --version``
shows it)."""

__version__ = "0.1.0"
