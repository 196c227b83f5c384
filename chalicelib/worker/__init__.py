"""The queue worker and the schedules: dispatch, sending, pacing, notifications."""
