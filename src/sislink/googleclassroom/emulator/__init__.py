"""The local Google Classroom (`sislink google serve`): a faithful stand-in of the Classroom API
for the demo, the tests and the benchmarks, driven by the discovery document Google's client
library ships. `backend.py` holds the state and Classroom's rules, `app.py` the HTTP side,
`keys.py` the service account keys and the token endpoint's checks, `server.py` runs it.
"""

from sislink.googleclassroom.emulator.app import ClassroomConfig, LocalClassroom
from sislink.googleclassroom.emulator.server import RunningClassroom, running_classroom

__all__ = ["ClassroomConfig", "LocalClassroom", "RunningClassroom", "running_classroom"]
