"""OneRoster, the protocol: models, versions as data, filters, errors; `consumer` and `provider`.

This package knows nothing of classrooms.
"""
