pytest_plugins = ["tests.fakes.fixtures", "tests.redis_server"]


def pytest_sessionstart(session: object) -> None:
    """Under ``AILB_EXPECT_COMPILED=1`` (tests/integration/test_compiled.py) the run must import the compiled
    hot path: a tree that silently fell back to Python would pass without testing it."""
    import os

    if os.environ.get("AILB_EXPECT_COMPILED") == "1":
        from ailb.compiled import HOT_MODULES, compiled_modules

        assert compiled_modules() == list(HOT_MODULES), compiled_modules()
