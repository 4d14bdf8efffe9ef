"""memory-service: the engine's long-term memory, kept in PostgreSQL."""
