"""cityloop: an event-driven incident coordination bus for a megacity's four operations loops."""

__version__ = "0.1.0"
