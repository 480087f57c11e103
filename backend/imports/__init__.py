"""CSV imports: a file of records for one entity, written through the record service."""
