"""`.venv/bin/python -m training` rebuilds the reader, bot/reader.npz, from ../shared/eval (see training/reader.py)."""

from training.reader import main

main()
