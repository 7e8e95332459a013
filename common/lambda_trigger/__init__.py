"""Shared core of datahub-lambda-trigger: the request/status contract, URN checks,
mapping resolution and settings that both the api and the consumer import."""

__version__ = "0.1.0"
