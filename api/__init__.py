"""Salvo: a REST API serving structured conflict events.

The web app is built by create_app (api/app.py). Importing this package loads
nothing else, so that the store (api/store) and the seed's import workers, which
never import Flask, start without the web stack.
"""

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from flask import Flask


def create_app(config: dict[str, Any] | None = None) -> "Flask":
    """Build the Flask app (api.app.create_app); `flask --app api` finds it here."""
    from api.app import create_app as build

    return build(config)
