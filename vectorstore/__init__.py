"""Vectors and search: embedders, Chroma, the keyword catalog and their fusion. Imports neither ingest nor bot."""
