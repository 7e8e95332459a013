"""The local stack for development and tests: a real Kafka broker, the GMS test double and a
moto server. Not shipped in the wheel.

Kept free of imports: `python -m devstack.<module>` children import this package first.
"""
