"""`newsdesk eval answers` reports how well the answerer's confidence separates answerable questions from
unanswerable ones, apart from where its threshold sits: the figure that says whether to move the threshold
or improve the confidence."""

from __future__ import annotations

import math

from newsdesk.evaluation import separation


def test_a_confidence_that_separates_refuses_every_unanswerable_question_at_the_bar() -> None:
    pairs = [(0.9 + i / 100, 0.5 - i / 100) for i in range(20)]
    assert separation(pairs) == {"auc": 1.0, "bar": 0.91, "unanswerable_refused": 1.0}


def test_overlap_and_ties_count_as_they_fall() -> None:
    """Answerable 0.2, 0.4, 0.6, 0.8 against unanswerable 0.1, 0.4, 0.5, 0.9: of 16 pairs the answerable one is
    higher in 8 and tied in 1, so AUC 8.5 / 16; the bar refusing at most 5% of four answerable is the lowest
    (0.2), under which one unanswerable (0.1) falls."""
    pairs = [(0.2, 0.1), (0.4, 0.4), (0.6, 0.5), (0.8, 0.9)]
    assert separation(pairs) == {"auc": round(8.5 / 16, 3), "bar": 0.2, "unanswerable_refused": 0.25}


def test_no_questions_give_no_figures() -> None:
    assert all(math.isnan(value) for value in separation([]).values())
