"""The console's web pages: one module per area (sign-in, SIS setup, roster, activity, classes)."""
