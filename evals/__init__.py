"""Evaluation: question sets, the runner, metrics defined in one place, reports with
charts, and a history of runs to compare (see ``evals/README.md``)."""
