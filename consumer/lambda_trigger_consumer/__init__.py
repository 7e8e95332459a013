"""The MCL consumer: record -> key filter -> decode -> request -> target -> invoke -> status.

Each step is a module of its own; `runner` is the poll loop that strings them together and
`handler` runs one request (target -> invoke -> status) on a worker thread.
"""
