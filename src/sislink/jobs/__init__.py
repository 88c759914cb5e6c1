"""Long work (imports, exports) as jobs: plain functions of ids, run in-process or on Celery."""
