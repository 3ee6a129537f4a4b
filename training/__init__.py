"""Training the answer model (bot/answer_model.py) from ../shared/eval: `python -m training`."""
