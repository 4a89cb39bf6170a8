"""The console's widgets, one file each. They are fed by the app on the UI thread only."""
