"""sislink: an open, self-hosted classroom with a first-class link to the school's SIS."""

__version__ = "0.1.0"
