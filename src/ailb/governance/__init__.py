"""Per-key governance: model scopes, request and token rates, and spend budgets per client key."""
