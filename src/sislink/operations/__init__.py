"""The operator's view: health and readiness, metrics, and logs as JSON.

Sits above `classroom/` and `jobs/runner.py` and below `console/` and `cli/`: the console's
/healthz, /readyz and /metrics answer from here, and the job runner and the console set the
ids that every log line carries (`operations.logs`).
"""
