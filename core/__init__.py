"""Project-wide plumbing that no domain app owns (issue 12 moves more of it here)."""
