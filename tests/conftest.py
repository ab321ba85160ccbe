pytest_plugins = ["tests.fakes.fixtures", "tests.redis_server"]
