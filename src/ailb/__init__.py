"""AILB, the AI Load Balancer."""

__version__ = "0.1.0"
