"""Human review of rewrites: decisions kept as history in DuckDB, the local review page, CSV round trips."""
