"""The HTTP api behind the Run ingestion button: checks the caller and the dataset, writes
the run request into DataHub. It holds no AWS client and no AWS credentials."""
