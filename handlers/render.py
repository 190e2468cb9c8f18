"""Showing a screen: navigation edits the message in place; `Keyboard` builds its buttons."""

from __future__ import annotations

import contextlib

from aiogram.exceptions import TelegramBadRequest
from aiogram.filters.callback_data import CallbackData
from aiogram.types import CallbackQuery, InlineKeyboardButton, InlineKeyboardMarkup, Message

ROW_MAX = 8  # buttons in a row, InlineKeyboardBuilder's limit


class Keyboard:
    """InlineKeyboardBuilder's `button()`, `adjust()` and `as_markup()`, with its layout rules
    (rows of up to 8 buttons, or `adjust()`'s sizes with the last one repeated), without its
    deep copies: the builder copies the whole keyboard for every button added and again to
    export it, which was a quarter of an update's CPU in the bench/dispatch.py profile."""

    __slots__ = ("_buttons", "_sizes")

    def __init__(self) -> None:
        self._buttons: list[InlineKeyboardButton] = []
        self._sizes: tuple[int, ...] = (ROW_MAX,)

    def button(self, *, text: str, callback_data: str | CallbackData) -> None:
        if isinstance(callback_data, CallbackData):
            callback_data = callback_data.pack()
        self._buttons.append(InlineKeyboardButton(text=text, callback_data=callback_data))

    def adjust(self, *sizes: int) -> None:
        if not all(1 <= size <= ROW_MAX for size in sizes):
            raise ValueError(f"row sizes must be 1..{ROW_MAX}: {sizes}")
        self._sizes = sizes or (ROW_MAX,)

    def as_markup(self) -> InlineKeyboardMarkup:
        rows: list[list[InlineKeyboardButton]] = []
        start, last = 0, len(self._sizes) - 1
        while start < len(self._buttons):
            size = self._sizes[min(len(rows), last)]
            rows.append(self._buttons[start : start + size])
            start += size
        return InlineKeyboardMarkup(inline_keyboard=rows)


async def show(
    query: CallbackQuery, text: str, markup: InlineKeyboardMarkup | None = None
) -> None:
    """Edit the pressed message; send a new one when it can no longer be edited."""
    message = query.message
    if isinstance(message, Message):
        try:
            await message.edit_text(text, reply_markup=markup)
        except TelegramBadRequest as exc:
            if "message is not modified" not in exc.message:
                await message.answer(text, reply_markup=markup)
    elif query.bot is not None:
        await query.bot.send_message(query.from_user.id, text, reply_markup=markup)
    with contextlib.suppress(TelegramBadRequest):
        await query.answer()
