"""Console sessions kept in the database (issue 17 item 9) and sign-in throttling (item 10).

Revision ID: 0008
Revises: 0007
"""
