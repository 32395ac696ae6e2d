"""Constants shared by the Telegram tests."""

from __future__ import annotations

TOKEN = "123456789:AAH-tranquillite_test-token"
SECRET = "test-secret_0123456789"
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
