"""The test suite, a package: test helpers live in tests.support (see tests/support/__init__.py)."""
