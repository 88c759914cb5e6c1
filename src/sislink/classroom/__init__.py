"""The classroom: our own data (SQLAlchemy) and the services that change it."""
