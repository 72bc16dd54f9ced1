"""Who may call what: worker tokens (one task instance each) and admin API keys."""
