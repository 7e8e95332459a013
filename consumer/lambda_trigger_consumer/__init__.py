"""The MCL consumer: record -> key filter -> decode -> request -> target -> invoke -> status.

Each step is a module of its own. `runner` is the poll loop (key filter, decode, request) that
records every run request in the run ledger (`ledger`, a compacted Kafka topic); `driver` takes
each run of the ledger partitions this consumer owns through target -> claim -> invoke ->
track -> status, and `completion` reads asynchronous Lambdas' outcomes from SQS.
"""
