"""Tests of the documentation and the packaging: links, the version matrix, settings, builds."""
