"""The built-in OneRoster SIS: a store, a FastAPI app serving 1.1 and 1.2, vendor profiles, faults."""
