"""crash-triage: pick the analysis a stop calls for, and sign the crash."""
