"""One router per audience: administrators (SIS setup), roster, teachers."""
