"""Errors that mean "fix your input or settings": the jobs report them as one clear line."""


class InputError(ValueError):
    """A missing or unusable input, option or weights source."""
