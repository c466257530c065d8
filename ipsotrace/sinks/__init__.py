"""Sinks: renderers and stores that consume core records (the core never imports them)."""
