"""Training the reader (bot/reader.py) from ../shared/eval: `python -m training`."""
