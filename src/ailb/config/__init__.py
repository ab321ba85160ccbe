"""Configuration: environment variables and an optional YAML file → one frozen, validated ``Settings``.

``schema.py`` the dataclasses; ``values.py`` the value types; ``env.py`` the table of environment variables;
``file.py`` the YAML file and its ``settings:`` section; ``deployments.py`` and ``client_keys.py`` the file's
other sections; ``load.py`` the two phases. Callers import from ``ailb.settings``.
"""
