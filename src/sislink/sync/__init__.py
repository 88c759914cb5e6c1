"""Where the classroom and the SIS meet: connection lifecycle, roster import, mark export, identity.

The only package that knows both `sislink.classroom` and `sislink.oneroster`.
"""
