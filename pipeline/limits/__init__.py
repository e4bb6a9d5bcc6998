"""Sending limits per account: quota windows, the rate limiter, throttle back-off, rotation, account health."""
