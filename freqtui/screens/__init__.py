"""The console's extra screens: help, and (with sessions) the session browser."""
