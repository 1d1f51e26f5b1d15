"""Domain rules every face shares: eMAIDs, certificates, staged settings, wire schemas, domain errors."""
