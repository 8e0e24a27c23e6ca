"""The daily e-mail alert: one message per citizen per day at most, only when there is news."""
