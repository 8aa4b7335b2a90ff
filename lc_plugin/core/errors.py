"""Errors the engine raises for bad input, worded for the person who chose that input."""

from __future__ import annotations


class LandCoverError(Exception):
    """A problem with the user's input or environment, with a message that says how to fix it.

    ``parameter`` names the Processing parameter at fault (e.g. ``"AOI"``) when there is one,
    so the algorithm layer can point the user at the right field.
    """

    def __init__(self, message: str, parameter: str | None = None) -> None:
        super().__init__(message)
        self.parameter = parameter


class Cancelled(Exception):
    """Raised inside the engine when the caller asked to stop; outputs are left unwritten."""
