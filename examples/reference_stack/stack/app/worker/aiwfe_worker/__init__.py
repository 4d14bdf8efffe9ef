"""The worker: turns pending jobs into documents."""
