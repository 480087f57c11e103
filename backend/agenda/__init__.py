"""A rep's worklist: the agenda of the day (meetings, calls, tasks, overdue tasks) in the
user's time zone, and the reminders whose time has come."""
