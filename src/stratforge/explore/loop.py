"""The autonomous exploration loop (orchestrator). Work in progress by the lead."""
