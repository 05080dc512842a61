"""SLA policy, escalation, notifications, feeds and the daemon."""
