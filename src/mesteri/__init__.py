"""Mesteri: a trusted local-services marketplace."""

__version__ = "0.1.0"
