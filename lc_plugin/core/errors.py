"""Errors the engine raises on purpose, worded for the person who chose the input.

Every error names the *Python argument* at fault (``argument="min_valid_fraction"``), so a notebook user
reads the name they typed. A message may say ``{argument}`` where that name belongs: ``str(error)`` puts the
Python name there, and the Processing layer (``algorithms/base.py``) puts its own parameter id there through
``render`` — each algorithm maps the arguments of the engine function it wraps to its parameter ids in one
place (its ``ARGUMENTS``; an argument whose upper-case form is a parameter id needs no entry).

The kinds say what the caller can do about it:

- ``InputError``: an argument's value or the file it names is unusable (fix the input);
- ``DataError``: the inputs are readable but their content cannot give a result (no clear date, no
  reference pixel on the patch): choose other data or settings;
- ``DependencyError``: an optional package is missing or too old (install it);
- ``ServiceError``: a download service refused or failed (credentials, quota, outage).

``Cancelled`` is not an error: the caller asked to stop, and outputs are left unwritten.
"""

from __future__ import annotations

ARGUMENT = "{argument}"


class LandCoverError(Exception):
    """Base of the engine's errors: a message that says how to fix it, and the argument at fault.

    ``argument`` is the engine function's argument name; during the move to typed errors some
    modules still pass a Processing parameter id here, which the algorithms accept as well.
    """

    def __init__(self, message: str, argument: str | None = None) -> None:
        super().__init__(message)
        self.template = message
        self.argument = argument

    def render(self, name: str | None = None) -> str:
        """The message with ``name`` (default: the Python argument) where it says ``{argument}``."""
        name = name or self.argument
        return self.template.replace(ARGUMENT, name) if name else self.template

    def __str__(self) -> str:
        return self.render()


class InputError(LandCoverError, ValueError):
    """An argument's value, or the file it names, cannot be used as given."""


class DataError(LandCoverError):
    """The inputs are readable, but what they hold cannot give a result with these settings."""


class DependencyError(LandCoverError, ImportError):
    """An optional package a step needs is missing or unusable; the message says how to install it."""


class ServiceError(LandCoverError):
    """A download service refused or failed the request (credentials, quota, outage, bad answer)."""


class Cancelled(Exception):
    """Raised inside the engine when the caller asked to stop; outputs are left unwritten."""
