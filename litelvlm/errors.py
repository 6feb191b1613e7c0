"""User-facing errors: the CLI prints them on stderr and exits with status 2."""


class LiteLVLMError(Exception):
    """Bad input or configuration that the user can fix (a path, an argument, a model name)."""


class UnsupportedModelError(LiteLVLMError):
    """The model lacks a token or module that the requested computation needs (e.g. a CLS token)."""
