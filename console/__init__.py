"""Tafang dispatcher console: the Textual app and the `tafang` command."""
