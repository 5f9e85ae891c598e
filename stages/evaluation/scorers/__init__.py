"""One scorer per benchmark: ``score(item, response) -> Verdict`` and ``aggregate(items, verdicts)``."""
