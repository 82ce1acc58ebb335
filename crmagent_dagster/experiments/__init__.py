"""Experiments: deployments of approved rewrites, their assignment rule, and realized uplift."""
