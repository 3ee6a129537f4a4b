"""Vectors and search: embedders, Chroma, the keyword catalog and their fusion. Imports only text (never ingest
or bot)."""
