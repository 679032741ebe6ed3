"""One home for the helpers the tests share: page driver, served page, waits and metrics, load drivers, servers.

Tests import them as `from tests.support.browser import AppPage`; bench/ may import them too, never the other way.
"""
