"""Widgets of the console: plain data in, messages out; no database code."""
