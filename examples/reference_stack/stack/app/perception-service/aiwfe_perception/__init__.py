"""perception-service: turns inputs into observations; needs memory-service."""
