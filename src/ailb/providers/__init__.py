"""Upstream providers: one adapter per wire protocol."""
