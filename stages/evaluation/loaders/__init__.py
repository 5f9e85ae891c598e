"""One loader per benchmark: both public layouts -> ``EvalItem``s (see ``common.collect``)."""
