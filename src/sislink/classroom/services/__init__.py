"""The classroom's services: small typed functions that check permissions and input, then write.

Each takes the caller's Session (from `Classroom.transaction()`) and, where a person acts,
an `Actor`. They raise ClassroomError subclasses with plain messages, never database errors.

- access: Actor, permission checks (a teacher changes only the classes they teach)
- people, classes, coursework, marks: the classroom itself
- connections: the SIS connection (secret sealed at rest) and class links
- export_settings: a class's mark export choices (missing marks as 0 or not submitted; drafts)
- jobs, audit, ledger, organisation: what happened, what was sent, the identity namespace
"""
