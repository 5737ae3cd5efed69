"""The chat page: sign-in, conversations with branching, streaming, compare-and-vote, feedback."""
