"""End-to-end tests: a package, so its conftest is ``e2e.conftest`` and never shadows ``tests/conftest.py`` (tests/web imports ``from conftest import ...``)."""
