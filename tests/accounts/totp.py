"""TOTP codes for tests, computed from the secret exactly as an authenticator app does."""

from __future__ import annotations

import time

from allauth.mfa.totp.internal.auth import format_hotp_value, hotp_value

PERIOD = 30
# A code read in the last seconds of its period may be checked in the next one (allauth's tolerance is 0
# periods by default): wait for a fresh period rather than fail now and then.
SAFETY_SECONDS = 4


def totp_code(secret: str, *, steps_ahead: int = 0) -> str:
    if PERIOD - time.time() % PERIOD < SAFETY_SECONDS:
        time.sleep(PERIOD - time.time() % PERIOD + 0.1)
    return format_hotp_value(hotp_value(secret, int(time.time()) // PERIOD + steps_ahead))
