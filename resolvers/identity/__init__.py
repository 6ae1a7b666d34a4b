"""Who may do what: roles and permissions (Appendix C), tokens, OIDC, rate limits."""
