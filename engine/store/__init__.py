"""What freqtui keeps on disk and how: files written atomically, torch files read safely,
the session lock, writable-folder checks, the sessions folder, the typed snapshot and
the comparison of saved runs. Nothing here trains."""
