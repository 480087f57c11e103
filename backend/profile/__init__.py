"""The signed-in user's own settings (`/api/v1/me`): for now, their name and time zone."""
