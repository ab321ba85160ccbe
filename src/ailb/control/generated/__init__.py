"""Stubs generated from ``module_service.proto`` by ``python -m ailb.control.codegen``. Do not edit."""
